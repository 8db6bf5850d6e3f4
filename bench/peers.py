#!/usr/bin/python3
"""The peers' side of the benchmark workloads (bench/run drives it): PyTorch, scikit-learn,
pandas and numpy, all from Debian. Each command prints one JSON object, timing the same part of
the work as chainrule_bench does (training or reading only, never setup).

  peers.py w1 INIT_JSON                 PyTorch, the tutorial from chainrule's initial weights
  peers.py w2 DIR THREADS               PyTorch, Fashion-MNIST 784-128-64-10, one epoch
  peers.py w2-sklearn DIR               scikit-learn MLPClassifier, the same network and epoch
  peers.py w3 DIR THREADS               PyTorch, 784-1024-1024-10, batch 256
  peers.py w3-bf16 DIR THREADS          the same under CPU autocast to bfloat16
  peers.py w4 DIR THREADS               PyTorch inference at batch 1 and 1024
  peers.py w5-pandas CSV | w5-numpy CSV reading the CSV into a float32 matrix
"""
import gzip
import json
import os
import resource
import sys
import time

# The command's thread count (w2, w3, w4: their last argument; the others run on one thread), set
# for every library that reads it when it loads, before numpy or torch loads: OpenBLAS (Debian's
# pthread build, shared by numpy and torch) and OpenMP. torch.set_num_threads alone does not reach
# OpenBLAS: "1 thread" then ran its products on both cores (measured: 2.0 s of CPU time per second).
THREADS = (int(sys.argv[-1]) if len(sys.argv) > 3 and sys.argv[1] in ("w2", "w3", "w3-bf16", "w4")
           else 1)
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))  # unless bench/run tries another
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

import numpy as np  # noqa: E402 (after the environment above)


def emit(**kw):
    print(json.dumps(kw), flush=True)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fashion(d, prefix, limit=None):
    with gzip.open(f"{d}/{prefix}-images-idx3-ubyte.gz") as f:
        X = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(f"{d}/{prefix}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    if limit:
        X, y = X[:limit], y[:limit]
    return (X.astype(np.float32) / 255), y


def torch_setup(threads):
    assert threads == THREADS, "the thread count is set when peers.py starts"
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    return torch


def mlp(torch, hidden):
    layers, inp = [], 784
    for h in hidden:
        layers += [torch.nn.Linear(inp, h), torch.nn.ReLU()]
        inp = h
    layers.append(torch.nn.Linear(inp, 10))
    return torch.nn.Sequential(*layers)


def w1(init_json):
    torch = torch_setup(1)
    w = json.load(open(init_json))
    X = torch.tensor(w["X"], dtype=torch.float64)
    Y = torch.tensor(w["Y"], dtype=torch.float64)
    p = w["params"]  # chainrule's flat buffer: W1 (in, out) column-major, b1, W2, b2
    times, loss = [], None
    for _ in range(int(w.get("reps", 5))):
        l1 = torch.nn.Linear(2, 2).double()
        l2 = torch.nn.Linear(2, 1).double()
        with torch.no_grad():
            l1.weight.copy_(torch.tensor(p[0:4], dtype=torch.float64).reshape(2, 2))  # (out, in)
            l1.bias.copy_(torch.tensor(p[4:6], dtype=torch.float64))
            l2.weight.copy_(torch.tensor(p[6:8], dtype=torch.float64).reshape(1, 2))
            l2.bias.copy_(torch.tensor(p[8:9], dtype=torch.float64))
        model = torch.nn.Sequential(l1, torch.nn.Sigmoid(), l2, torch.nn.Sigmoid())
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        mse = torch.nn.MSELoss()
        start = time.perf_counter()
        for _ in range(1000):
            for n in range(4):
                opt.zero_grad()
                loss_n = mse(model(X[n:n + 1]), Y[n:n + 1])
                loss_n.backward()
                opt.step()
        times.append(time.perf_counter() - start)
        with torch.no_grad():
            loss = float(mse(model(X), Y))
    emit(workload="w1", peer="PyTorch", seconds=float(np.median(times)), steps=4000,
         final_loss=loss)


def w2(d, threads):
    torch = torch_setup(threads)
    X, y = fashion(d, "train")
    Xt, yt = fashion(d, "t10k")
    X, y, Xt = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(Xt)
    model = mlp(torch, [128, 64])
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    ce = torch.nn.CrossEntropyLoss()
    start, cpu = time.perf_counter(), time.process_time()
    for first in range(0, 60000, 64):
        opt.zero_grad(set_to_none=True)
        loss = ce(model(X[first:first + 64]), y[first:first + 64])
        loss.backward()
        opt.step()
    s = time.perf_counter() - start
    cores = (time.process_time() - cpu) / s
    with torch.no_grad():
        acc = float((model(Xt).argmax(1).numpy() == yt).mean())
    emit(workload="w2", peer="PyTorch", threads=threads, seconds=s, samples_per_s=60000 / s,
         cores=cores, accuracy=acc, peak_rss_mib=peak_rss_mib())


def w2_sklearn(d):
    import warnings
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    X, y = fashion(d, "train")
    Xt, yt = fashion(d, "t10k")
    clf = MLPClassifier(hidden_layer_sizes=(128, 64), activation="relu", solver="sgd",
                        learning_rate_init=0.05, momentum=0, batch_size=64, max_iter=1,
                        shuffle=False, alpha=0, random_state=1)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    s = time.perf_counter() - start
    emit(workload="w2", peer="scikit-learn", threads=1, seconds=s, samples_per_s=60000 / s,
         accuracy=float((clf.predict(Xt) == yt).mean()), peak_rss_mib=peak_rss_mib())


def w3(d, threads, dtype="float32"):
    """dtype bfloat16: the matrix products under CPU autocast (float32 weights, bfloat16
    products), as `--dtype bfloat16` trains."""
    torch = torch_setup(threads)
    import contextlib
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if dtype == "bfloat16" \
        else contextlib.nullcontext
    n = 256 * 40
    X, y = fashion(d, "train", n)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    model = mlp(torch, [1024, 1024])
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    ce = torch.nn.CrossEntropyLoss()

    def epoch(count):
        for first in range(0, count, 256):
            opt.zero_grad(set_to_none=True)
            with autocast():
                loss = ce(model(X[first:first + 256]), y[first:first + 256])
            loss.backward()
            opt.step()
    epoch(512)
    start, cpu = time.perf_counter(), time.process_time()
    epoch(n)
    s = time.perf_counter() - start
    cores = (time.process_time() - cpu) / s
    params = sum(p.numel() for p in model.parameters())
    emit(workload="w3", peer="PyTorch", dtype=dtype, threads=threads, seconds=s,
         samples_per_s=n / s,
         cores=cores, gflops=6 * params * n / s / 1e9)


def w4(d, threads):
    torch = torch_setup(threads)
    Xt, _ = fashion(d, "t10k")
    Xt = torch.from_numpy(Xt)
    model = mlp(torch, [128, 64]).eval()
    with torch.inference_mode():
        for batch in (1, 1024):
            n = 10000 if batch == 1 else 100 * 1024  # 100 batches, as chainrule_bench
            model(Xt[:batch])
            start, cpu = time.perf_counter(), time.process_time()
            for first in range(0, n, batch):
                f = first % (10000 - batch + 1)
                model(Xt[f:f + batch])
            s = time.perf_counter() - start
            emit(workload="w4", peer="PyTorch", threads=threads, batch=batch, seconds=s,
                 samples_per_s=n / s, cores=(time.process_time() - cpu) / s)


def w5(csv, how):
    mb = os.path.getsize(csv) / 1e6
    start = time.perf_counter()
    if how == "pandas":
        import pandas as pd
        X = pd.read_csv(csv).to_numpy(np.float32)
    else:
        X = np.loadtxt(csv, delimiter=",", skiprows=1, dtype=np.float32)
    s = time.perf_counter() - start
    emit(workload="w5", peer=how, seconds=s, mb_per_s=mb / s, rows=X.shape[0], cols=X.shape[1],
         peak_rss_mib=peak_rss_mib())


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "w1":
        w1(args[0])
    elif cmd == "w2":
        w2(args[0], int(args[1]))
    elif cmd == "w2-sklearn":
        w2_sklearn(args[0])
    elif cmd == "w3":
        w3(args[0], int(args[1]))
    elif cmd == "w3-bf16":
        w3(args[0], int(args[1]), "bfloat16")
    elif cmd == "w4":
        w4(args[0], int(args[1]))
    elif cmd in ("w5-pandas", "w5-numpy"):
        w5(args[0], cmd[3:])
    else:
        sys.exit(f"unknown workload {cmd}")
