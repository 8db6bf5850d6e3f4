#!/usr/bin/python3
"""PyTorch's own data parallelism as the peer of `mpirun -np 2 chainrule train` (bench/distributed.py):
DistributedDataParallel over gloo, N processes × 1 thread, W3's network (784-1024-1024-10, ReLU,
softmax cross-entropy), SGD with momentum, the global batch split evenly among the processes, on
Fashion-MNIST's test images (10000). Prints one JSON line: training seconds and samples/s.

  torch_ddp.py PROCESSES EPOCHS GLOBAL_BATCH
"""
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

FASHION = "/usr/share/datasets/fashion-mnist"


def load():
    with gzip.open(f"{FASHION}/t10k-images-idx3-ubyte.gz") as f:
        X = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255
    with gzip.open(f"{FASHION}/t10k-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return torch.from_numpy(X), torch.from_numpy(y)


def worker(rank, n, epochs, batch, port, out):
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=n)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 1024), torch.nn.ReLU(),
                                torch.nn.Linear(1024, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 10))
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    X, y = load()
    g = torch.Generator().manual_seed(1)
    per = batch // n
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=g)
        for b in range(0, len(X), batch):
            idx = order[b:b + batch][rank * per:(rank + 1) * per]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(ddp(X[idx]), y[idx])
            loss.backward()
            opt.step()
    dist.barrier()
    seconds = time.perf_counter() - t0
    if rank == 0:
        out.put({"peer": f"PyTorch {torch.__version__} DDP (gloo)", "processes": n, "threads": 1,
                 "seconds": seconds, "samples_per_s": epochs * len(X) / seconds})
    dist.destroy_process_group()


if __name__ == "__main__":
    n, epochs, batch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    port = 29500 + os.getpid() % 1000
    mp.spawn(worker, args=(n, epochs, batch, port, q), nprocs=n, join=True)
    print(json.dumps(q.get()))
