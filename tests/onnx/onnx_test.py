#!/usr/bin/python3
"""Exports chainrule models of the end-to-end datasets to ONNX and checks them: ONNX's own checker
(python3-onnx) on every file, and ONNX Runtime (onnxruntime-node from the npm registry) against
`chainrule predict` on every row, to 1e-5. Also the files the Python estimators save (a
classifier with text labels, a regressor), where the package is importable.

Usage: onnx_test.py CHAINRULE_BINARY SOURCE_DIR WORK_DIR
"""
import csv
import gzip
import io
import json
import os
import subprocess
import sys

import numpy as np
import onnx

SK = "/usr/lib/python3/dist-packages/sklearn/datasets/data"
FASHION = "/usr/share/datasets/fashion-mnist"


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def idx_rows(images, labels, n):
    with gzip.open(images) as f:
        x = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 784)[:n]
    with gzip.open(labels) as f:
        y = np.frombuffer(f.read(), dtype=np.uint8, offset=8)[:n]
    return x, y


def main(binary, source, work):
    os.makedirs(work, exist_ok=True)
    modules = os.path.join(work, "npm")
    if not os.path.isdir(os.path.join(modules, "node_modules", "onnxruntime-node")):
        os.makedirs(modules, exist_ok=True)
        run(["npm", "install", "--prefix", modules, "--ignore-scripts", "--no-audit", "--no-fund",
             "onnxruntime-node@1.30.0"])
    env = dict(os.environ, ORT_NODE_MODULES=os.path.join(modules, "node_modules"))

    # A mixed table: numbers with a gap (imputed), a text feature and a text target.
    rng = np.random.RandomState(0)
    mixed = os.path.join(work, "mixed.csv")
    with open(mixed, "w") as f:
        f.write("a,b,color,kind\n")
        for i in range(200):
            a, b = rng.normal(), rng.normal()
            color = ["red", "green", "blue"][i % 3]
            kind = "x" if a + b + (color == "red") > 0.5 else ("y" if a - b > 0 else "z")
            f.write(f"{'' if i % 17 == 0 else f'{a:.5f}'},{b:.5f},{color},{kind}\n")

    def sk_csv(name, file, preamble=True):
        a = np.loadtxt(f"{SK}/{file}", delimiter=",", skiprows=1 if preamble else 0)
        path = os.path.join(work, name + ".csv")
        np.savetxt(path, a, delimiter=",", header=",".join([f"x{i}" for i in range(a.shape[1] - 1)] + ["target"]),
                   comments="", fmt="%.10g")
        return path

    diabetes = os.path.join(work, "diabetes.csv")
    X = np.loadtxt(f"{SK}/diabetes_data_raw.csv.gz")
    y = np.loadtxt(f"{SK}/diabetes_target.csv.gz")
    np.savetxt(diabetes, np.column_stack([X, y]), delimiter=",", comments="", fmt="%.10g",
               header="age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target")

    fx, fy = idx_rows(f"{FASHION}/t10k-images-idx3-ubyte.gz", f"{FASHION}/t10k-labels-idx1-ubyte.gz", 10000)
    cases = [
        ("iris", sk_csv("iris", "iris.csv"), ["--target", "target"]),
        ("breast_cancer", sk_csv("breast_cancer", "breast_cancer.csv"), ["--target", "target", "--activation", "relu"]),
        ("digits", sk_csv("digits", "digits.csv.gz", preamble=False), ["--target", "target", "--dtype", "float64"]),
        ("diabetes", diabetes, ["--target", "target", "--activation", "leaky_relu"]),
        ("mixed", mixed, ["--target", "kind", "--impute", "mean", "--layers", "8,6", "--activation", "sigmoid"]),
        ("fashion", None, ["--layers", "64", "--epochs", "2", "--activation", "relu"]),
    ]
    # Model files written by the Python estimators' save() (where the package is importable: ctest
    # sets PYTHONPATH to the build tree's): the command line exports them like its own.
    estimator_models = {}
    try:
        import pandas as pd
        import chainrule as package
    except ImportError:
        package = None
        print("the Python package is not importable: its estimators' files are not checked")
    if package is not None:
        import warnings
        warnings.filterwarnings("ignore")
        iris = pd.read_csv(sk_csv("sk_iris", "iris.csv"))
        names = ["setosa", "versicolor", "virginica"]
        clf = package.MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, random_state=3)
        clf.fit(iris.drop(columns="target"), [names[int(t)] for t in iris["target"]])
        estimator_models["sklearn_classifier"] = clf
        reg = package.MLPRegressor(hidden_layer_sizes=(16,), max_iter=200, random_state=3,
                                   activation="tanh")
        table = pd.read_csv(diabetes)
        reg.fit(table.drop(columns="target"), table["target"])
        estimator_models["sklearn_regressor"] = reg
        cases += [("sklearn_classifier", os.path.join(work, "sk_iris.csv"), []),
                  ("sklearn_regressor", diabetes, [])]

    for name, data, flags in cases:
        model = os.path.join(work, name + ".safetensors")
        exported = os.path.join(work, name + ".onnx")
        if name in estimator_models:
            train = test = [data]
            estimator_models[name].save(model)
        elif name == "fashion":
            train = [f"{FASHION}/train-images-idx3-ubyte.gz", "--labels", f"{FASHION}/train-labels-idx1-ubyte.gz"]
            test = [f"{FASHION}/t10k-images-idx3-ubyte.gz", "--labels", f"{FASHION}/t10k-labels-idx1-ubyte.gz"]
        else:
            train = test = [data]
        if name not in estimator_models:
            run([binary, "train", *train, "--quiet", "--epochs", "20", "--seed", "3", "--out",
                 model] + flags)
        run([binary, "export", model, "--onnx", exported])
        onnx.checker.check_model(onnx.load(exported), full_check=True)
        proto = onnx.load(exported)
        meta = {p.key: p.value for p in proto.metadata_props}
        predicted = list(csv.DictReader(io.StringIO(run([binary, "predict", model, *test]))))
        numeric_names = json.loads(meta["numeric_features"])
        text_names = json.loads(meta["text_features"])
        dtype = "float64" if proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE else "float32"
        case = {"rows": len(predicted), "dtype": dtype, "tolerance": 1e-5}
        if name == "fashion":
            case["numeric"] = fx.astype(float).reshape(-1).tolist()
        else:
            rows = list(csv.DictReader(open(data)))
            case["numeric"] = [float(r[c]) if r[c] != "" else None for r in rows for c in numeric_names]  # None: NaN
            case["text"] = {c: [r[c] for r in rows] for c in text_names}
        if meta["task"] == "regress":
            case["value"] = [float(r[meta["target"]]) for r in predicted]
            case["tolerance"] = 1e-5 * max(abs(v) for v in case["value"])  # values in the hundreds
        else:
            classes = json.loads(meta["classes"])
            case["probabilities"] = [float(r["p_" + c]) for r in predicted for c in classes]
            case["label"] = [classes.index(r[meta["target"]]) for r in predicted]
        case_path = os.path.join(work, name + ".json")
        json.dump(case, open(case_path, "w"))
        out = run(["node", os.path.join(source, "tests", "onnx", "run_onnx.mjs"), exported, case_path], env=env)
        print(f"{name}: checker ok, onnxruntime {out.strip()}")


if __name__ == "__main__":
    main(*sys.argv[1:])
