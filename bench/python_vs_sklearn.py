#!/usr/bin/python3
"""chainrule.MLPClassifier beside scikit-learn's MLPClassifier in the same run: the same data
(standardized float32, as both take it), architecture, solver, batch and epochs (tol=0, so both
run every epoch), each on one core and on two: scikit-learn through OpenBLAS's threads,
chainrule through its own (OpenBLAS on one); medians of --reps fits, the libraries in turns. Also
the fit's overhead: its wall time against the training time `chainrule train` reports for the
same job (the build's binary), and against the engine's own training time inside the fit; with
--memory, the peak memory fit adds on Fashion-MNIST. A minute or two, not CI; the figures go to
bench/RESULTS.md.

Usage: PYTHONPATH=build/python bench/python_vs_sklearn.py [--reps 3] [--memory]
"""
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLP
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import chainrule

D = "/usr/share/datasets/fashion-mnist"


def idx(path, offset):
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def fashion():
    X = idx(f"{D}/train-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float32)
    y = idx(f"{D}/train-labels-idx1-ubyte.gz", 8)
    Xt = idx(f"{D}/t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float32)
    yt = idx(f"{D}/t10k-labels-idx1-ubyte.gz", 8)
    s = StandardScaler().fit(X)
    return s.transform(X).astype(np.float32), y, s.transform(Xt).astype(np.float32), yt


def digits():
    X, y = load_digits(return_X_y=True)
    X, Xt, y, yt = train_test_split(X.astype(np.float32), y, test_size=0.25, random_state=0)
    s = StandardScaler().fit(X)
    return s.transform(X).astype(np.float32), y, s.transform(Xt).astype(np.float32), yt


def settings(layers, epochs):
    return dict(hidden_layer_sizes=layers, activation="relu", solver="adam", batch_size=200,
                learning_rate_init=0.001, max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1,
                random_state=1)


def cli_seconds(data_args, layers, epochs, threads):
    """`chainrule train` on the same job (the build's binary beside the package): its training
    time, the sum of the epochs' seconds in its --log (the printed total has two decimals)."""
    cli = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(chainrule.__file__)))), "chainrule")
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "log.jsonl")
        subprocess.run([cli, "train", *data_args, "--layers", ",".join(map(str, layers)),
                        "--activation", "relu", "--optimizer", "adam", "--lr", "0.001",
                        "--batch", "200", "--epochs", str(epochs), "--val", "0",
                        "--l2", "0.0001", "--seed", "1", "--threads",
                        str(threads), "--quiet", "--log", log, "--out",
                        os.path.join(d, "m.safetensors")], check=True, capture_output=True)
        with open(log) as f:
            return sum(json.loads(line)["seconds"] for line in f)


def cli_data(name, X, y, directory):
    """The command line's data for the same job: the same float32 rows as a CSV file (digits), or
    Fashion-MNIST's IDX files with its own standard scaling (the same shapes and work; writing 47 M
    values as text would take longer than the run)."""
    if name == "Fashion-MNIST":
        return [f"{D}/train-images-idx3-ubyte.gz", "--labels", f"{D}/train-labels-idx1-ubyte.gz",
                "--scale", "standard"]
    path = os.path.join(directory, f"{name}.csv")
    header = ",".join([f"x{i}" for i in range(X.shape[1])] + ["label"])
    np.savetxt(path, np.column_stack([X.astype(np.float64), y]), delimiter=",", fmt="%.9g",
               header=header, comments="")
    return [path, "--target", "label", "--task", "classify", "--scale", "none"]


def timed_fit(make, X, y, blas_threads):
    est = make()
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        start = time.perf_counter()
        est.fit(X, y)
        return time.perf_counter() - start, est


def median(runs):
    """The run of median wall time: (seconds, estimator)."""
    return sorted(runs, key=lambda r: r[0])[len(runs) // 2]


def compare(name, data, layers, epochs, reps):
    """Each estimator on 1 and on 2 cores: scikit-learn through OpenBLAS's threads (its only
    parallelism; threadpoolctl sets them), chainrule through its own threads with OpenBLAS on one
    (as the command line runs). Each chainrule run is compared with scikit-learn on as many cores,
    and with scikit-learn's fastest setting on this machine (whichever core count was faster: its
    products are too small for OpenBLAS's threads to pay, so one core often wins). Medians of
    `reps` fits, the libraries' runs in turns (scikit-learn's last in each turn, followed by a
    pause). Returns the speed-ups."""
    X, y, Xt, yt = data
    warnings.filterwarnings("ignore")
    sk_runs = {1: [], 2: []}
    cr_runs = {1: [], 2: []}
    cli_runs = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as d:
        args = cli_data(name, X, y, d)
        for _ in range(reps):
            # scikit-learn last in each turn, then a pause: OpenBLAS's threads spin for a while
            # after its products (in this process) and would take a core from what follows.
            for t in (1, 2):
                cr_runs[t].append(timed_fit(
                    lambda: chainrule.MLPClassifier(**settings(layers, epochs), scale="none",
                                                    threads=t), X, y, 1))
                cli_runs[t].append(cli_seconds(args, layers, epochs, t))
            for t in (1, 2):
                sk_runs[t].append(timed_fit(lambda: SkMLP(**settings(layers, epochs)), X, y, t))
                time.sleep(0.5)
    sk = {t: median(sk_runs[t]) for t in (1, 2)}
    cr = {t: median(cr_runs[t]) for t in (1, 2)}
    cli = {t: sorted(cli_runs[t])[reps // 2] for t in (1, 2)}
    fastest = min(sk[1][0], sk[2][0])
    result = {}
    for t in (1, 2):
        seconds, est = cr[t]
        engine = est.fit_seconds_
        result[t] = (sk[t][0] / seconds, fastest / seconds, 100 * (seconds / cli[t] - 1))
        print(f"| {name} | {X.shape[0]}×{X.shape[1]}, {layers}, adam, batch 200, {epochs} epochs | "
              f"{t} | {sk[t][0]:.2f} s ({sk[t][1].score(Xt, yt):.4f}) | {seconds:.3f} s "
              f"({est.score(Xt, yt):.4f}) | {result[t][0]:.2f}× | {result[t][1]:.2f}× | "
              f"{engine:.3f} s, {100 * (seconds / engine - 1):+.1f}% | {cli[t]:.3f} s, "
              f"{result[t][2]:+.1f}% |", flush=True)
    return result


def bfloat16(name, data, layers, epochs):
    """chainrule with dtype='bfloat16' (bfloat16 products, float32 weights) on 1 and 2 threads:
    for the record, beside its float32 rows above; not scikit-learn's arithmetic, so not one of
    the comparisons the targets count."""
    X, y, Xt, yt = data
    for t in (1, 2):
        est = chainrule.MLPClassifier(**settings(layers, epochs), scale="none", threads=t,
                                      dtype="bfloat16")
        with threadpool_limits(limits=1, user_api="blas"):
            start = time.perf_counter()
            est.fit(X, y)
            seconds = time.perf_counter() - start
        print(f"| {name}, chainrule dtype='bfloat16' | | {t} | | {seconds:.3f} s "
              f"({est.score(Xt, yt):.4f}) | | | {est.fit_seconds_:.3f} s | |", flush=True)


MEMORY_CASES = {
    "in place": dict(order="C", scale="none"),
    "default scaling (standard)": dict(order="C", scale="standard"),
    "Fortran order": dict(order="F", scale="none"),
}


def memory(case):
    """Peak RSS that fit adds on Fashion-MNIST's float32 array, in a process of its own (peak RSS
    only grows)."""
    order, scale = MEMORY_CASES[case]["order"], MEMORY_CASES[case]["scale"]
    # The pixels straight into float32 (no float64 intermediate), so that the peak before fit is
    # the data itself.
    pixels = idx(f"{D}/train-images-idx3-ubyte.gz", 16).reshape(-1, 784)
    X = np.empty(pixels.shape, dtype=np.float32, order=order)
    X[:] = pixels
    X /= 255
    y = idx(f"{D}/train-labels-idx1-ubyte.gz", 8)
    del pixels
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    chainrule.MLPClassifier(**settings((128,), 1), scale=scale).fit(X, y)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"| {case} ({order} order, scale={scale!r}) | {before / 2**20:.0f} MiB | "
          f"{after / 2**20:.0f} MiB | {(after - before) / 2**20:.0f} MiB = "
          f"{(after - before) / X.nbytes:.2f} copies |", flush=True)


if __name__ == "__main__":
    if "--memory-case" in sys.argv:
        memory(sys.argv[sys.argv.index("--memory-case") + 1])
        sys.exit()
    if "--memory" in sys.argv:
        print("Fashion-MNIST's 60000×784 float32 array (179 MiB), fit of one epoch:")
        print("| X | peak RSS before fit | after | fit added |")
        print("|---|---|---|---|")
        for case in MEMORY_CASES:
            subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-case", case],
                           check=True)
        sys.exit()
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 3
    print(f"Medians of {reps} fits each.")
    print("| data | run | cores | scikit-learn fit (test accuracy) | chainrule fit (test accuracy) | "
          "speed-up, same cores | speed-up over scikit-learn's fastest | the fit's own training "
          "time, the fit's wall time over it | `chainrule train`'s training time, the fit's wall "
          "time over it |")
    print("|---|---|---|---|---|---|---|---|---|")
    results = {"digits": compare("digits", digits(), (100,), 50, reps)}
    data = fashion()
    results["Fashion-MNIST"] = compare("Fashion-MNIST", data, (128,), 5, reps)
    if chainrule.bf16_available():
        bfloat16("Fashion-MNIST", data, (128,), 5)
    print()
    print("| target (issue 11) | | measured |")
    print("|---|---|---|")
    for name, r in results.items():
        best = max(r[1][1], r[2][1])
        print(f"| fit at least 2× faster than scikit-learn on {name}, chainrule on this machine's "
              f"cores against scikit-learn's fastest setting | {'met' if best >= 2 else 'not met'} | "
              f"{best:.2f}× |")
        print(f"| the same, one core each (reported; not the target: see bench/RESULTS.md) | | "
              f"{r[1][0]:.2f}× |")
    worst = max(v[2] for r in results.values() for v in r.values())
    print(f"| the fit's overhead over `chainrule train`'s training time at most 10%, every row | "
          f"{'met' if worst <= 10 else 'not met'} | at most +{worst:.1f}% |")
