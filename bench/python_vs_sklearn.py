#!/usr/bin/python3
"""chainrule.MLPClassifier beside scikit-learn's MLPClassifier in the same run: the same data
(standardized float32, as both take it), architecture, solver, batch and epochs (tol=0, so both
run every epoch), each on one core and on two: scikit-learn through OpenBLAS's threads,
chainrule through its own (OpenBLAS on one). Also the binding's overhead (the fit call's wall time
against the engine's own training time) and, with --memory, the peak memory fit adds on
Fashion-MNIST. Minutes, not CI; the figures go to bench/RESULTS.md.

Usage: PYTHONPATH=build/python bench/python_vs_sklearn.py [--memory]
"""
import gzip
import resource
import sys
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


def compare(name, data, layers, epochs):
    """Each estimator on 1 and on 2 cores: scikit-learn through OpenBLAS's threads (its only
    parallelism; threadpoolctl sets them), chainrule through its own threads with OpenBLAS on one
    (as the command line runs). Each chainrule run is compared with scikit-learn on as many."""
    X, y, Xt, yt = data
    warnings.filterwarnings("ignore")
    sk = {}
    for t in (1, 2):
        est = SkMLP(**settings(layers, epochs))
        with threadpool_limits(limits=t, user_api="blas"):
            start = time.perf_counter()
            est.fit(X, y)
            sk[t] = (time.perf_counter() - start, est.score(Xt, yt))
    for t in (1, 2):
        est = chainrule.MLPClassifier(**settings(layers, epochs), scale="none", threads=t)
        with threadpool_limits(limits=1, user_api="blas"):
            start = time.perf_counter()
            est.fit(X, y)
            seconds = time.perf_counter() - start
        engine = est.fit_seconds_
        print(f"| {name} | {X.shape[0]}×{X.shape[1]}, {layers}, adam, batch 200, {epochs} epochs | "
              f"{t} | {sk[t][0]:.2f} s ({sk[t][1]:.4f}) | {seconds:.2f} s ({est.score(Xt, yt):.4f}) "
              f"| {sk[t][0] / seconds:.2f}× | {engine:.2f} s, +{100 * (seconds / engine - 1):.1f}% |",
              flush=True)


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
        print(f"| {name}, chainrule dtype='bfloat16' | | {t} | | {seconds:.2f} s "
              f"({est.score(Xt, yt):.4f}) | | {est.fit_seconds_:.2f} s |", flush=True)


def memory():
    # The pixels straight into float32 (no float64 intermediate), so that the peak before fit is
    # the data itself.
    pixels = idx(f"{D}/train-images-idx3-ubyte.gz", 16).reshape(-1, 784)
    X = np.empty(pixels.shape, dtype=np.float32)
    X[:] = pixels
    X /= 255
    y = idx(f"{D}/train-labels-idx1-ubyte.gz", 8)
    del pixels
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    chainrule.MLPClassifier(**settings((128,), 1), scale="none").fit(X, y)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"Fashion-MNIST {X.shape} float32 ({X.nbytes / 2**20:.0f} MiB): peak RSS before fit "
          f"{before / 2**20:.0f} MiB, after {after / 2**20:.0f} MiB: fit added "
          f"{(after - before) / 2**20:.0f} MiB = {(after - before) / X.nbytes:.2f} copies")


if __name__ == "__main__":
    if "--memory" in sys.argv:
        memory()
        sys.exit()
    print("| data | run | cores | scikit-learn fit (test accuracy) | chainrule fit (test accuracy) | "
          "speed-up | chainrule engine time, binding overhead |")
    print("|---|---|---|---|---|---|---|")
    compare("digits", digits(), (100,), 50)
    data = fashion()
    compare("Fashion-MNIST", data, (128,), 5)
    if chainrule.bf16_available():
        bfloat16("Fashion-MNIST", data, (128,), 5)
