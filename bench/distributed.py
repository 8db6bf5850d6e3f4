#!/usr/bin/python3
"""Data-parallel training under mpirun (issue 12), side by side in one run on this machine:

- W3's network (784-1024-1024-10, ReLU, SGD with momentum, global batch 512) on Fashion-MNIST's
  10000 test images through `chainrule train`: 1 process × 1 thread, and `mpirun -np 2` × 1
  thread (scaling efficiency), against PyTorch's DistributedDataParallel (gloo), 2 processes × 1
  thread, same network and batch (bench/torch_ddp.py);
- what one step's gradient sum costs (bench/allreduce_bench.cpp: bytes and time, 2 ranks), through
  shared memory (the ranks of one machine) and as messages over TCP (as between hosts);
- W2's network (784-128-64-10, batch 64) on 1 process, for its compute time per step;
- a projection to 8 and 64 hosts on 10 and 100 Gb/s links from those numbers (docs/distributed.md
  explains the model).

Training time is what `chainrule train` reports (the training loop, not loading); samples/s are
epochs × rows / that time. One process and 2 ranks run in turns, 2·reps + 1 pairs, and the pair
with the median ratio is reported; every other row is the median of --reps runs. Two bounds
without communication: each rank's half of every batch on each core alone, and on both cores at
once (two processes, as the ranks run).

  bench/distributed.py [--reps 3] [--epochs 3] [--build DIR]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# OpenBLAS's kernels: each library's own choice for this CPU, as in bench/run (an
# OPENBLAS_CORETYPE in the environment would hold chainrule and PyTorch alike to another set).
forced = os.environ.pop("OPENBLAS_CORETYPE", None)
ap = argparse.ArgumentParser()
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--epochs", type=int, default=3)
ap.add_argument("--build", default=os.path.join(root, "build-bench"))
args = ap.parse_args()

if not os.path.exists(os.path.join(args.build, "bench", "allreduce_bench")):
    subprocess.run([os.path.join(root, "scripts", "setup")], check=True)
    subprocess.run(["cmake", "-S", root, "-B", args.build, "-DCMAKE_BUILD_TYPE=Release",
                    "-DCHAINRULE_BUILD_BENCH=ON", "-DCHAINRULE_BUILD_TESTS=OFF"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", args.build, "-j2", "--target", "chainrule", "allreduce_bench",
                    "chainrule_bench"],
                   check=True, stdout=subprocess.DEVNULL)
BIN = os.path.join(args.build, "chainrule")
FASHION = "/usr/share/datasets/fashion-mnist"
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "core"]
ROWS = 10000
out_model = "/tmp/chainrule-distributed-bench.safetensors"


def command(ranks, layers, batch, epochs, core=None, out=out_model):
    cmd = [BIN, "train", f"{FASHION}/t10k-images-idx3-ubyte.gz", "--labels",
           f"{FASHION}/t10k-labels-idx1-ubyte.gz", "--layers", layers, "--activation", "relu",
           "--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.01", "--batch", str(batch),
           "--epochs", str(epochs), "--val", "0", "--threads", "1", "--quiet", "--out", out]
    if ranks > 0:
        cmd = MPIRUN + ["-np", str(ranks)] + cmd
    elif core is not None:  # one process held to one core, as mpirun --bind-to core holds a rank
        cmd = ["taskset", "-c", str(core)] + cmd
    return cmd


def timed(stdout, epochs):
    seconds = float(re.search(r" in ([0-9.]+) s,", stdout).group(1))
    return {"seconds": seconds, "samples_per_s": epochs * ROWS / seconds}


def chainrule(ranks, layers, batch, epochs, core=None):
    cmd = command(ranks, layers, batch, epochs, core) + (["--timings"] if ranks > 0 else [])
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    r = timed(p.stdout, epochs)
    # Under mpirun, where each rank's steps spent their time (--timings: a line per rank).
    r["timings"] = [l for l in p.stdout.splitlines() if l.startswith("time in training steps")]
    return r


def median(f, reps):
    runs = sorted((f() for _ in range(reps)), key=lambda r: r["seconds"])
    return runs[len(runs) // 2]


E = args.epochs
# One process and 2 ranks in turns, one pair a round, 2·reps + 1 rounds: each pair's ratio, and
# the pair with the median ratio (a slow spell of this shared machine then falls on both sides of
# a pair rather than on all the runs of one side).
# Each pair with a cache line's round trip between cores 0 and 1 measured just before it: on
# these virtual machines the 2 vCPUs share an L3 cache at some hours (about 80 ns) and not at
# others (about 400 ns), and the gradient sums cross between them.
def line_ns():  # None where the process has one core
    out = subprocess.run([os.path.join(args.build, "bench", "chainrule_bench"), "line"],
                         capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])["round_trip_ns"] if out.returncode == 0 else None


pairs = []
for _ in range(2 * args.reps + 1):
    ns = line_ns()
    o, t = chainrule(0, "1024,1024", 512, E), chainrule(2, "1024,1024", 512, E)
    pairs.append((t["samples_per_s"] / o["samples_per_s"], o, t, ns))
pairs.sort(key=lambda p: p[0])
_, one, two, _ = pairs[len(pairs) // 2]
# What bounds the 2 ranks: each one runs steps of 256 rows (and its share of the optimizer).
half = median(lambda: chainrule(0, "1024,1024", 256, E), args.reps)
# The same on each core alone (mpirun --bind-to core puts rank r on core r). The cores of a
# virtual machine need not run alike: on the machines of this project's sessions one core at a
# time has read memory at half the other's speed (another guest on its host); two ranks with
# equal shares of each batch then wait for the slower one every step.
cores = list(range(min(2, os.cpu_count() or 1)))
per_core = {c: (median(lambda: chainrule(0, "1024,1024", 512, E, c), args.reps),
                median(lambda: chainrule(0, "1024,1024", 256, E, c), args.reps)) for c in cores}
# Each rank's half of every batch on both cores at once (two processes at batch 256, pinned,
# sharing nothing): the cores at the speed they have while the other is busy, no communication.
# Each process runs twice a rank's rows, so half the slower one's time is the bound. (It also
# updates all the weights each step where a rank updates its half: a little below what 2 ranks
# could reach.)
def at_once():
    procs = [subprocess.Popen(command(0, "1024,1024", 256, E, c, f"{out_model}.core{c}"),
                              stdout=subprocess.PIPE, text=True) for c in cores]
    runs = [timed(p.communicate()[0], E) for p in procs]
    if any(p.returncode for p in procs):
        sys.exit("bench/distributed.py: a process on both cores at once failed")
    return runs


together = None
if len(cores) == 2:
    rounds = sorted((at_once() for _ in range(args.reps)), key=lambda r: max(x["seconds"] for x in r))
    together = rounds[len(rounds) // 2]
ddp = median(lambda: json.loads(subprocess.run(
    ["/usr/bin/python3", os.path.join(root, "bench", "torch_ddp.py"), "2", str(E), "512"],
    capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]), args.reps)
w2 = median(lambda: chainrule(0, "128,64", 64, E), args.reps)
def gradient_sums(mca):
    return [json.loads(l) for l in subprocess.run(
        MPIRUN + mca + ["-np", "2", os.path.join(args.build, "bench", "allreduce_bench")],
        capture_output=True, text=True, check=True).stdout.splitlines() if l.startswith("{")]


sums = gradient_sums([])  # the ranks of one machine: through shared memory
tcp_sums = gradient_sums(["--mca", "btl", "tcp,self"])  # as between hosts: messages over TCP

steps3 = E * -(-ROWS // 512)
steps2 = E * -(-ROWS // 64)
w3_flops = 6 * (784 * 1024 + 1024 * 1024 + 1024 * 10) * ROWS * E  # forward + backward multiply-adds × 2
if forced:
    print(f"(OPENBLAS_CORETYPE={forced} removed from the environment)\n")
print(f"| what | processes × threads | training s | samples/s | ratio |")
print(f"|---|---|---|---|---|")
print(f"| W3, chainrule, 1 process | 1 × 1 | {one['seconds']:.2f} | {one['samples_per_s']:,.0f} | 1.00 |")
print(f"| W3, chainrule, mpirun -np 2 | 2 × 1 | {two['seconds']:.2f} | {two['samples_per_s']:,.0f} | "
      f"{two['samples_per_s'] / one['samples_per_s']:.2f}× one process (target ≥ 1.8×; the median of "
      f"{len(pairs)} pairs in turns, each with a cache line's round trip between the cores: "
      f"{', '.join(f'{p[0]:.2f}' + (f' ({p[3]:.0f} ns)' if p[3] else '') for p in pairs)}) |")
print(f"| W3, chainrule, 1 process, batch 256 (a rank's share of a step) | 1 × 1 | "
      f"{half['seconds']:.2f} | {half['samples_per_s']:,.0f} | bound for 2 ranks: "
      f"{2 * half['samples_per_s'] / one['samples_per_s']:.2f}× one process |")
for c, (full, part) in per_core.items():
    print(f"| W3, chainrule, 1 process on core {c} alone (batch 512; batch 256) | 1 × 1 | "
          f"{full['seconds']:.2f}; {part['seconds']:.2f} | {full['samples_per_s']:,.0f}; "
          f"{part['samples_per_s']:,.0f} | {full['samples_per_s'] / one['samples_per_s']:.2f}; "
          f"{part['samples_per_s'] / one['samples_per_s']:.2f} |")
if len(per_core) == 2:
    slow = max(part["seconds"] for _, part in per_core.values())
    fast = min(full["seconds"] for full, _ in per_core.values())
    print(f"| W3, 2 ranks, bound from the cores alone: each rank's half of every batch at its own "
          f"core's speed, the faster waiting for the slower, no communication | 2 × 1 | "
          f"{slow / 2:.2f} | {ROWS * E / (slow / 2):,.0f} | {one['seconds'] / (slow / 2):.2f}× one "
          f"process; {fast / (slow / 2):.2f}× one process on the faster core |")
if together:
    slow = max(r["seconds"] for r in together)
    print(f"| W3, 2 ranks, bound from both cores at once: each rank's half of every batch, two "
          f"processes at batch 256 on core 0 and core 1 together ({together[0]['seconds']:.2f} s and "
          f"{together[1]['seconds']:.2f} s), no communication | 2 × 1 | {slow / 2:.2f} | "
          f"{ROWS * E / (slow / 2):,.0f} | {one['seconds'] / (slow / 2):.2f}× one process; 2 ranks "
          f"reach {(slow / 2) / two['seconds']:.0%} of it |")
print(f"| W3, {ddp['peer']} | 2 × 1 | {ddp['seconds']:.2f} | {ddp['samples_per_s']:,.0f} | "
      f"chainrule {two['samples_per_s'] / ddp['samples_per_s']:.2f}× its samples/s (target ≥ 1.5×) |")
print(f"| W2 784-128-64-10, batch 64, chainrule, 1 process | 1 × 1 | {w2['seconds']:.2f} | "
      f"{w2['samples_per_s']:,.0f} | |")
print("\nThe median pair's 2-rank run, `--timings`:\n")
for line in two["timings"]:
    print(f"    {line}")


def fma_peak(threads):
    return max(json.loads(subprocess.run(
        [os.path.join(args.build, "bench", "chainrule_bench"), "peak", "--threads", str(threads)],
        capture_output=True, text=True, check=True).stdout.splitlines()[-1])["gflops"] for _ in range(3))


peak, peak1 = fma_peak(2), fma_peak(1)
print(f"\nW3 on 2 ranks: {w3_flops / two['seconds'] / 1e9:.0f} GFLOP/s in all, "
      f"{w3_flops / two['seconds'] / 1e9 / peak:.0%} of the 2 cores' measured FMA peak "
      f"({peak:.0f} GFLOP/s); one process {w3_flops / one['seconds'] / 1e9:.0f} GFLOP/s, "
      f"{w3_flops / one['seconds'] / 1e9 / peak1:.0%} of one core's ({peak1:.0f}).")
for s, t in zip(sums, tcp_sums):
    print(f"gradient sum, {s['network']}: {s['bytes'] / 2**20:.2f} MiB, {s['seconds'] * 1e3:.2f} ms "
          f"per step on {s['ranks']} ranks of this machine through shared memory, "
          f"{t['seconds'] * 1e3:.2f} ms as messages over TCP (--mca btl tcp,self)")
# Projection (docs/distributed.md): per step, compute time t/P (the global batch split over P
# hosts) plus a ring all-reduce of B bytes: 2(P-1)/P · B / bandwidth + 2(P-1) · latency.
comp = {"W2": w2["seconds"] / steps2, "W3": one["seconds"] / steps3}
size = {"W2": sums[0]["bytes"], "W3": sums[1]["bytes"]}
print("\n| network | hosts | link | compute ms/step | all-reduce ms/step | speed-up over 1 host |")
print("|---|---|---|---|---|---|")
for net in ("W2", "W3"):
    for hosts in (8, 64):
        for gbit, latency in ((10, 50e-6), (100, 10e-6)):
            c = comp[net] / hosts
            a = 2 * (hosts - 1) / hosts * size[net] * 8 / (gbit * 1e9) + 2 * (hosts - 1) * latency
            print(f"| {net} | {hosts} | {gbit} Gb/s | {c * 1e3:.3f} | {a * 1e3:.3f} | "
                  f"{comp[net] / (c + a):.1f}× |")
print(f"\n(one host: W2 {comp['W2'] * 1e3:.3f} ms/step at batch 64, W3 {comp['W3'] * 1e3:.2f} ms/step "
      f"at batch 512, measured here on one core)")
