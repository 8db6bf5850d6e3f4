#!/usr/bin/python3
"""End-to-end accuracy on real data that Debian ships, with chainrule's default settings.

For each scikit-learn dataset (python3-sklearn): five fixed, stratified 80/20 splits written as
CSV; on each, `chainrule train` on the 80% with only the target and a seed, `chainrule eval` on
the 20%, and scikit-learn's MLPClassifier / MLPRegressor (defaults, standardized inputs) on the
same split for comparison. The floors apply to the mean over the five splits: one split of
iris's 30 test rows moves accuracy in steps of 3.3 points. Fashion-MNIST (dataset-fashion-mnist): `--layers 128,64 --epochs 10` on the 60,000
training images, evaluated on the 10,000 test images. Fails when a floor is missed.

Usage: datasets_e2e.py CHAINRULE_BINARY WORK_DIR [--fashion | --fashion-only]
"""
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

SK = "/usr/lib/python3/dist-packages/sklearn/datasets/data"
FASHION = "/usr/share/datasets/fashion-mnist"
# name, loader, task, floor (accuracy or R²)
FLOORS = {"iris": 0.93, "wine": 0.95, "breast_cancer": 0.95, "digits": 0.96, "diabetes": 0.30}
SPLITS = 5
EXTRA = os.environ.get("CHAINRULE_TRAIN_FLAGS", "").split()  # for experiments only


def load(name):
    if name == "diabetes":
        X = np.loadtxt(f"{SK}/diabetes_data_raw.csv.gz")
        y = np.loadtxt(f"{SK}/diabetes_target.csv.gz")
        return X, y
    if name == "digits":
        a = np.loadtxt(f"{SK}/digits.csv.gz", delimiter=",")
    else:
        file = {"iris": "iris.csv", "wine": "wine_data.csv", "breast_cancer": "breast_cancer.csv"}[name]
        a = np.loadtxt(f"{SK}/{file}", delimiter=",", skiprows=1)  # a preamble line
    return a[:, :-1], a[:, -1].astype(int)


def split(y, classify, seed=0):
    """Stratified for classification: 20% of each class to the test split."""
    rng = np.random.RandomState(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if classify else [np.arange(len(y))]
    test = []
    for g in groups:
        g = rng.permutation(g)
        test += list(g[: int(round(0.2 * len(g)))])
    test = np.array(sorted(test))
    train = np.setdiff1d(np.arange(len(y)), test)
    return train, test


def write_csv(path, X, y):
    with open(path, "w") as f:
        f.write(",".join([f"x{i}" for i in range(X.shape[1])] + ["target"]) + "\n")
        for row, t in zip(X, y):
            f.write(",".join(repr(float(v)) for v in row) + "," + repr(t.item()) + "\n")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stderr}")
    return r.stdout


def main(binary, work, fashion, small=True):
    os.makedirs(work, exist_ok=True)
    warnings.filterwarnings("ignore")
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.preprocessing import StandardScaler

    failures, rows = [], []
    for name, floor in (FLOORS.items() if small else []):
        classify = name != "diabetes"
        X, y = load(name)
        ours, theirs, seconds = [], [], 0.0
        for split_seed in range(SPLITS):
            tr, te = split(y, classify, split_seed)
            train_csv, test_csv = f"{work}/{name}_train.csv", f"{work}/{name}_test.csv"
            model = f"{work}/{name}.safetensors"
            write_csv(train_csv, X[tr], y[tr])
            write_csv(test_csv, X[te], y[te])
            start = time.time()
            run([binary, "train", train_csv, "--target", "target", "--seed", "1", "--quiet",
                 "--out", model] + EXTRA)
            seconds += time.time() - start
            metrics = json.loads(run([binary, "eval", model, test_csv, "--json"]))
            ours.append(metrics["accuracy"] if classify else metrics["r2"])
            scaler = StandardScaler().fit(X[tr])
            est = MLPClassifier(random_state=1) if classify else MLPRegressor(random_state=1)
            est.fit(scaler.transform(X[tr]), y[tr])
            theirs.append(est.score(scaler.transform(X[te]), y[te]))
        metric = "accuracy" if classify else "R²"
        mean = float(np.mean(ours))
        rows.append((name, metric, len(tr), len(te), mean, float(np.mean(theirs)), seconds / SPLITS, floor))
        if mean < floor:
            failures.append(f"{name}: mean {metric} {mean:.4f} below the floor {floor}")

    if fashion:
        model = f"{work}/fashion.safetensors"
        start = time.time()
        run([binary, "train", f"{FASHION}/train-images-idx3-ubyte.gz", "--labels",
             f"{FASHION}/train-labels-idx1-ubyte.gz", "--layers", "128,64", "--epochs", "10",
             "--seed", "1", "--quiet", "--out", model])
        seconds = time.time() - start
        metrics = json.loads(run([binary, "eval", model, f"{FASHION}/t10k-images-idx3-ubyte.gz",
                                  "--labels", f"{FASHION}/t10k-labels-idx1-ubyte.gz", "--json"]))
        # The floor sits below the spread of seeds and thread counts: seeds 1-3 on 1 and 2
        # threads gave 0.867-0.875 (2026-12-02), the rounding of each split of the work taking
        # training down a path of its own; 0.87, the floor before, was inside that spread.
        floor = 0.86
        rows.append(("fashion-mnist", "accuracy", 60000, 10000, metrics["accuracy"], None, seconds, floor))
        if metrics["accuracy"] < floor:
            failures.append(f"fashion-mnist: accuracy {metrics['accuracy']:.4f} below the floor {floor}")

    print(f"mean over {SPLITS} stratified 80/20 splits (Fashion-MNIST: its own test set)")
    print(f"{'dataset':<14} {'metric':<9} {'train':>6} {'test':>6} {'chainrule':>10} {'sklearn':>8} {'seconds':>8} {'floor':>6}")
    for name, metric, ntr, nte, ours, theirs, seconds, floor in rows:
        sk = f"{theirs:.4f}" if theirs is not None else "-"
        print(f"{name:<14} {metric:<9} {ntr:>6} {nte:>6} {ours:>10.4f} {sk:>8} {seconds:>8.2f} {floor:>6}")
    if failures:
        sys.exit("\n".join(failures))


if __name__ == "__main__":
    only = "--fashion-only" in sys.argv
    main(sys.argv[1], sys.argv[2], only or "--fashion" in sys.argv, small=not only)
