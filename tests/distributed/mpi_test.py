#!/usr/bin/python3
"""chainrule train under mpirun (issue 12), on this one machine: N processes train the model one
process trains, up to the order of floating-point additions.

- digits (scikit-learn's copy) in float64, SGD with momentum and Adam, a partial last batch and a
  validation split: the weights of N = 2 and 3 equal N = 1's (a run without mpirun) to 1e-10
  relative; the same N twice gives the same bytes; the ranks' batches are balanced (rows move
  between ranks) and their gradients summed through shared memory;
- the same over TCP between the ranks (--mca btl tcp,self), as between hosts: sums as messages;
  and with a /dev/shm too small for the shared window (a mount namespace of 40 MiB): messages;
- a rank killed (SIGKILL) mid-epoch: the job ends non-zero within 30 s, the last checkpoint
  loads, and resuming it gives the uninterrupted run's bytes (the same N) or its weights to
  1e-10 (another N);
- Ctrl-C (SIGINT to mpirun): every rank stops in the same step, rank 0 writes the checkpoint,
  and resuming gives the uninterrupted run's bytes;
- a malformed row in one rank's part: one error line naming the file and line, from one process,
  a non-zero exit, no hang, and the model file already there left as it was;
- per-rank peak memory with N = 2 on a generated CSV: about half of one process's.

- examples/distributed.cpp (the library under mpirun) and chainrule.train(distributed=True) (the
  Python package under mpirun) train the model the command line trains.

Usage: mpi_test.py CHAINRULE_BINARY WORK_DIR [EXAMPLE_DISTRIBUTED_BINARY]
"""
import gzip
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time

import numpy as np

BIN, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
os.makedirs(WORK, exist_ok=True)
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe"]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what, flush=True)


def run(cmd, timeout=300, ok=True, env=None):
    p = subprocess.run(cmd, cwd=WORK, capture_output=True, text=True, timeout=timeout, env=env)
    if ok and p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr}")
    return p


def train(n, args, out, extra_mpi=()):
    cmd = [BIN, "train"] + args + ["--out", out, "--quiet", "--threads", "1"]
    if n > 0:
        cmd = MPIRUN + list(extra_mpi) + ["-np", str(n)] + cmd
    return run(cmd)


T = r"([0-9.]+ (?:s|ms|µs))"
TIMINGS = re.compile(rf"time in training steps, process (\d+): (\d+) steps in {T}, {T} a step: "
                     rf"forward and backward {T}, rows from the other processes {T}, gradient sums "
                     rf"{T} \(waits for the others included\), optimizer's step {T}, the others' "
                     rf"weights {T}\n")


def seconds(t):
    value, unit = t.split()
    return float(value) * {"s": 1, "ms": 1e-3, "µs": 1e-6}[unit]


def last_digit(t):  # half of the last decimal printed, in seconds (3 decimals of its unit)
    return seconds("0.0005 " + t.split()[1])


def check_timings(out, n, steps, what):
    """--timings under mpirun: rank 0 prints one line per process, in rank order, each with every
    step counted, its phases adding up to its total, and that total within the training time."""
    lines = TIMINGS.findall(out)
    check([int(l[0]) for l in lines] == list(range(n)), f"{what}: the lines {lines} in\n{out}")
    trained = float(re.search(r"\) in ([0-9.]+) s, ", out).group(1))
    for rank, count, total_text, step_text, *phase_texts in lines:
        count, total, per_step = int(count), seconds(total_text), seconds(step_text)
        phases = [seconds(p) for p in phase_texts]
        check(count == steps, f"{what}: process {rank} counted {count} steps, not {steps}")
        # Each printed to 3 decimals of its unit.
        slack = last_digit(step_text) + sum(last_digit(p) for p in phase_texts)
        check(abs(sum(phases) - per_step) <= slack * 1.001, f"{what}: process {rank}'s "
              f"phases {phases} do not add up to {per_step} s a step")
        slack = last_digit(total_text) + count * last_digit(step_text)
        check(abs(per_step * count - total) <= slack * 1.001, f"{what}: process {rank}: "
              f"{per_step} s × {count} steps is not {total} s")
        check(total <= trained + 0.006, f"{what}: process {rank}'s steps took {total} s, the "
              f"training {trained} s")
        check(phases[2] > 0, f"{what}: process {rank}'s gradient sums took no time")


def tensors(path):
    b = open(os.path.join(WORK, path), "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype={"F64": np.float64, "F32": np.float32}[v["dtype"]])
    return out


def rel_diff(a, b):
    """The largest difference of a tensor's elements relative to its largest element (normwise:
    a weight near 0 does not turn a difference of 1e-17 into a large ratio)."""
    A, B = tensors(a), tensors(b)
    assert A.keys() == B.keys()
    return max(float(np.max(np.abs(A[k] - B[k])) / max(np.max(np.abs(A[k])), 1e-300)) for k in A)


def same_bytes(a, b):
    return open(os.path.join(WORK, a), "rb").read() == open(os.path.join(WORK, b), "rb").read()


SK = "/usr/lib/python3/dist-packages/sklearn/datasets/data"
with gzip.open(f"{SK}/digits.csv.gz", "rt") as f, open(os.path.join(WORK, "digits.csv"), "w") as g:
    g.write(",".join([f"px{i}" for i in range(64)] + ["digit"]) + "\n")
    g.write(f.read())

# 1797 rows: 1438 for training, batches of 50 end with one of 38.
BASE = ["digits.csv", "--layers", "32,16", "--epochs", "8", "--batch", "50", "--val", "0.2",
        "--dtype", "float64", "--patience", "0"]
OPTIMIZERS = {"sgd": ["--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.05"],
              "adam": ["--optimizer", "adam", "--lr", "0.003"]}
for name, opt in OPTIMIZERS.items():
    args = BASE + opt
    train(0, args, f"{name}-1.safetensors")
    for n in (1, 2, 3):
        out = train(n, args, f"{name}-np{n}.safetensors").stdout
        # The ranks of one machine sum their gradients through shared memory (an MPI window).
        check(n == 1 or f"on {n} processes (mpirun), their gradients summed through shared memory"
              in out, f"{name}: N = {n} did not sum through shared memory:\n{out}")
        d = rel_diff(f"{name}-1.safetensors", f"{name}-np{n}.safetensors")
        print(f"{name}: N = {n} against one process: max relative difference {d:.3g}")
        check(d <= 1e-10, f"{name}: N = {n} differs from one process by {d:.3g} (relative)")
    check(same_bytes(f"{name}-1.safetensors", f"{name}-np1.safetensors"),
          f"{name}: mpirun -np 1 is not byte-identical to one process")
    for n in (2, 3):
        # The second run with --timings, which must change nothing but what is printed.
        out = train(n, args + ["--timings"], f"{name}-np{n}-again.safetensors").stdout
        check(same_bytes(f"{name}-np{n}.safetensors", f"{name}-np{n}-again.safetensors"),
              f"{name}: N = {n} twice (the second with --timings) gives different files")
        check_timings(out, n, 8 * -(-1438 // 50), f"{name}: N = {n} --timings")
    # Over TCP, as between hosts.
    out = train(2, args, f"{name}-tcp.safetensors", ["--mca", "btl", "tcp,self"]).stdout
    check("their gradients summed as messages" in out,
          f"{name}: N = 2 over TCP did not sum as messages:\n{out}")
    d = rel_diff(f"{name}-1.safetensors", f"{name}-tcp.safetensors")
    print(f"{name}: N = 2 over TCP: max relative difference {d:.3g}")
    check(d <= 1e-10, f"{name}: N = 2 over TCP differs by {d:.3g}")
    # The run's metrics agree too.
    one = json.loads(run([BIN, "info", f"{name}-1.safetensors", "--json"]).stdout)["metrics"]
    three = json.loads(run([BIN, "info", f"{name}-np3.safetensors", "--json"]).stdout)["metrics"]
    for split in ("train", "validation"):
        check(one[split]["rows"] == three[split]["rows"] and
              abs(one[split]["loss"] - three[split]["loss"]) <= 1e-9 * abs(one[split]["loss"]),
              f"{name}: {split} metrics {one[split]} against {three[split]}")

# A /dev/shm too small for the shared window (a container's 64 MiB, say): the ranks see it before
# they allocate and sum as messages, with the same model. Played in a mount namespace of its own
# with a 40 MiB /dev/shm, where this machine lets root make one.
SMALL = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=40m tmpfs /dev/shm && exec "$@"', "sh"]
probe = subprocess.run(SMALL + ["true"], capture_output=True, text=True)
if probe.returncode == 0:
    args = BASE + OPTIMIZERS["sgd"]
    p = run(SMALL + MPIRUN + ["-np", "3", BIN, "train"] + args +
            ["--out", "small-shm.safetensors", "--quiet", "--threads", "1"])
    check("their gradients summed as messages" in p.stdout,
          f"a small /dev/shm: the ranks did not fall back to messages:\n{p.stdout}{p.stderr}")
    d = rel_diff("sgd-1.safetensors", "small-shm.safetensors")
    print(f"a 40 MiB /dev/shm: N = 3 sums as messages, against one process {d:.3g}")
    check(d <= 1e-10, f"a small /dev/shm: N = 3 differs by {d:.3g}")
else:
    print(f"a small /dev/shm: not tried (no mount namespace here: {probe.stderr.strip()})")

# The target by its index (a column of the whole table, as one process reads it).
TARGET = ["digits.csv", "--target", "64", "--layers", "16", "--epochs", "2", "--dtype", "float64"]
train(0, TARGET, "target-1.safetensors")
train(3, TARGET, "target-np3.safetensors")
d = rel_diff("target-1.safetensors", "target-np3.safetensors")
print(f"--target 64: N = 3 against one process {d:.3g}")
check(d <= 1e-10, f"--target by index: N = 3 differs by {d:.3g}")

# The library example: 2 processes through fit() with a group, against the command line alone.
if len(sys.argv) > 3:
    run(MPIRUN + ["-np", "2", sys.argv[3], "digits.csv", "example.safetensors"])
    train(0, ["digits.csv", "--layers", "32", "--dtype", "float64", "--epochs", "5"], "example-cli.safetensors")
    d = rel_diff("example-cli.safetensors", "example.safetensors")
    print(f"library example: 2 processes against the command line alone: {d:.3g}")
    check(d <= 1e-10, f"library example: differs by {d:.3g}")

# The Python package (when built beside the binary): chainrule.train(..., distributed=True).
PYDIR = os.path.join(os.path.dirname(BIN), "python")
if os.path.isdir(os.path.join(PYDIR, "chainrule")):
    open(os.path.join(WORK, "dist.py"), "w").write(
        "import sys, chainrule\n"
        "m = chainrule.train(sys.argv[1], layers=[32], dtype='float64', epochs=5, distributed=True)\n"
        "assert chainrule.mpi_size() == int(sys.argv[3]), chainrule.mpi_size()\n"
        "if chainrule.mpi_rank() == 0:\n"
        "    m.save(sys.argv[2])\n")
    env = {**os.environ, "PYTHONPATH": PYDIR}
    run(["/usr/bin/python3", "dist.py", "digits.csv", "py-1.safetensors", "1"], env=env)
    run(MPIRUN + ["-np", "2", "-x", "PYTHONPATH", "/usr/bin/python3", "dist.py", "digits.csv",
                  "py-np2.safetensors", "2"], env=env)
    d = rel_diff("py-1.safetensors", "py-np2.safetensors")
    print(f"Python: chainrule.train(distributed=True) on 2 processes against one: {d:.3g}")
    check(d <= 1e-10, f"Python: 2 processes differ by {d:.3g}")
    check(rel_diff("py-1.safetensors", "example-cli.safetensors") == 0 if len(sys.argv) > 3 else True,
          "Python: one process differs from the command line")

# Dropout: masks drawn per process (they depend on N, docs/distributed.md); the same N twice gives
# the same bytes, and the model learns as one process's does.
DROP = BASE + OPTIMIZERS["adam"] + ["--dropout", "0.2"]
train(0, DROP, "dropout-1.safetensors")
train(2, DROP, "dropout-np2.safetensors")
train(2, DROP, "dropout-np2-again.safetensors")
check(same_bytes("dropout-np2.safetensors", "dropout-np2-again.safetensors"),
      "dropout: N = 2 twice gives different files")
acc = [json.loads(run([BIN, "info", m, "--json"]).stdout)["metrics"]["validation"]["accuracy"]
       for m in ("dropout-1.safetensors", "dropout-np2.safetensors")]
print(f"dropout: validation accuracy one process {acc[0]:.4f}, N = 2 {acc[1]:.4f}")
check(abs(acc[0] - acc[1]) < 0.03, f"dropout: accuracies {acc}")

# IDX images (Fashion-MNIST's test set, gzip): each rank keeps its share of the images.
FASHION = "/usr/share/datasets/fashion-mnist"
IDX = [f"{FASHION}/t10k-images-idx3-ubyte.gz", "--labels", f"{FASHION}/t10k-labels-idx1-ubyte.gz",
       "--layers", "32", "--epochs", "2", "--batch", "100", "--val", "0.1", "--dtype", "float64",
       "--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.05"]
train(0, IDX, "idx-1.safetensors")
train(3, IDX, "idx-np3.safetensors")
d = rel_diff("idx-1.safetensors", "idx-np3.safetensors")
print(f"IDX: N = 3 against one process: max relative difference {d:.3g}")
check(d <= 1e-10, f"IDX: N = 3 differs by {d:.3g}")

# --- stopping, killing, resuming --------------------------------------------------------------

# About 50 ms an epoch here; the stops below wait for epochs in the log, not for a time, so that
# a faster machine stops the run as surely.
SLOW = ["digits.csv", "--layers", "128,128", "--epochs", "100", "--batch", "4", "--val", "0.2",
        "--dtype", "float64", "--patience", "0", "--checkpoint-every", "1", "--lr", "0.002"]


def rank_pids(out):
    """The chainrule processes writing `out`, by rank."""
    pids = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0] == BIN.encode() and out.encode() in cmd:
            for e in env:
                if e.startswith(b"OMPI_COMM_WORLD_RANK="):
                    pids[int(e.split(b"=")[1])] = int(pid)
    return pids


def start(n, args, out):
    for f in (out, out + ".ckpt", out + ".log"):
        if os.path.exists(os.path.join(WORK, f)):
            os.remove(os.path.join(WORK, f))
    return subprocess.Popen(MPIRUN + ["-np", str(n), BIN, "train"] + args +
                            ["--out", out, "--threads", "1", "--log", out + ".log"],
                            cwd=WORK, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_epochs(out, proc, k, seconds=60):
    """Waits until the run's log has k epochs and its checkpoint exists; returns the last epoch's
    seconds (None if the run ended or the time ran out first)."""
    deadline = time.time() + seconds
    log = os.path.join(WORK, out + ".log")
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(log) and os.path.exists(os.path.join(WORK, out + ".ckpt")):
            lines = open(log).read().splitlines()
            if len(lines) >= k:
                return json.loads(lines[k - 1])["seconds"]
        time.sleep(0.01)
    return None


train(2, SLOW, "slow-np2.safetensors")
train(3, SLOW, "slow-np3.safetensors")

# A rank killed mid-epoch.
proc = start(2, SLOW, "killed.safetensors")
epoch = wait_epochs("killed.safetensors", proc, 2)
check(epoch is not None, "kill: the run did not reach its second epoch")
time.sleep((epoch or 0) / 2)  # into the middle of the next epoch
pids = rank_pids("killed.safetensors")
check(1 in pids, f"kill: rank 1 not found ({pids})")
t0 = time.time()
os.kill(pids.get(1, proc.pid), signal.SIGKILL)
try:
    _, err = proc.communicate(timeout=30)
    check(proc.returncode != 0, "kill: the job exited 0")
    print(f"kill: the job ended {time.time() - t0:.1f} s after rank 1 was killed, exit {proc.returncode}")
except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    check(False, "kill: the job did not end within 30 s")
check(not os.path.exists(os.path.join(WORK, "killed.safetensors")), "kill: a model was written")
info = run([BIN, "info", "killed.safetensors.ckpt", "--json"], ok=False)
check(info.returncode == 0, f"kill: the checkpoint does not load: {info.stderr}")
for n, reference in ((2, "slow-np2.safetensors"), (3, "slow-np3.safetensors")):
    subprocess.run(["cp", "killed.safetensors.ckpt", f"killed-{n}.ckpt"], cwd=WORK, check=True)
    run(MPIRUN + ["-np", str(n), BIN, "train", "--resume", f"killed-{n}.ckpt", "--out",
                  f"resumed-{n}.safetensors", "--quiet", "--threads", "1"])
    if n == 2:
        check(same_bytes(reference, "resumed-2.safetensors"),
              "kill: resuming with N = 2 does not give the uninterrupted run's bytes")
    d = rel_diff("slow-np2.safetensors", f"resumed-{n}.safetensors")
    # Over 60 epochs, the order of additions (which N changes) moves the weights by about as much
    # as between an uninterrupted N = 2 and N = 3: the bound for a resume with another N.
    bound = max(10 * rel_diff("slow-np2.safetensors", "slow-np3.safetensors"), 1e-10) if n != 2 else 0
    print(f"kill: resumed with N = {n}: max relative difference {d:.3g} to the uninterrupted N = 2 "
          f"(bound {bound:.3g})")
    check(d <= bound, f"kill: resumed with N = {n} differs by {d:.3g}")

# Ctrl-C: mpirun passes it on; every rank stops in the same step; rank 0 writes the checkpoint.
proc = start(2, SLOW, "stopped.safetensors")
check(wait_epochs("stopped.safetensors", proc, 2) is not None,
      "ctrl-c: the run did not reach its second epoch")
os.kill(proc.pid, signal.SIGINT)
_, err = proc.communicate(timeout=60)
check(proc.returncode != 0 and "interrupted after epoch" in err and err.count("interrupted after") == 1
      and "resume with: mpirun -np 2 chainrule train --resume" in err,
      f"ctrl-c: exit {proc.returncode}, {err}")
m = re.search(r"interrupted after (epoch \d+, batch \d+)", err)
print(f"ctrl-c: {m.group(1) if m else err.strip()}")
run(MPIRUN + ["-np", "2", BIN, "train", "--resume", "stopped.safetensors.ckpt", "--out",
              "stopped.safetensors", "--quiet", "--threads", "1"])
check(same_bytes("slow-np2.safetensors", "stopped.safetensors"),
      "ctrl-c: resuming does not give the uninterrupted run's bytes")

# --- hostile input ----------------------------------------------------------------------------

rows = open(os.path.join(WORK, "digits.csv")).read().splitlines()
rows[1700] = rows[1700].replace(",", ",x", 1)  # in the last rank's part
open(os.path.join(WORK, "bad.csv"), "w").write("\n".join(rows) + "\n")
open(os.path.join(WORK, "keep.safetensors"), "wb").write(b"precious")
p = run(MPIRUN + ["-np", "3", BIN, "train", "bad.csv", "--out", "keep.safetensors", "--threads", "1"],
        timeout=60, ok=False)
lines = [l for l in p.stderr.splitlines() if l.startswith("chainrule:")]
print("bad row:", lines)
check(p.returncode != 0, "bad row: exit 0")
check(len(lines) == 1 and "bad.csv:1701:" in lines[0], f"bad row: the error lines {lines}")
check(open(os.path.join(WORK, "keep.safetensors"), "rb").read() == b"precious",
      "bad row: the model file there was overwritten")
# A gap in one row, in whichever split it falls: one error from the process that holds it.
for row in (300, 1500):
    rows = open(os.path.join(WORK, "digits.csv")).read().splitlines()
    fields = rows[row].split(",")
    fields[5] = ""
    rows[row] = ",".join(fields)
    open(os.path.join(WORK, "gap.csv"), "w").write("\n".join(rows) + "\n")
    p = run(MPIRUN + ["-np", "3", BIN, "train", "gap.csv", "--out", "gap.safetensors", "--epochs", "1",
                      "--threads", "1"], timeout=60, ok=False)
    lines = [l for l in p.stderr.splitlines() if l.startswith("chainrule:")]
    print("gap:", lines)
    check(p.returncode != 0 and len(lines) == 1 and f"gap.csv:{row + 1}:6: missing value" in lines[0],
          f"gap in line {row + 1}: {p.returncode} {lines}")

# A column of text in the first half of the rows and of numbers or nothing in the second: the
# second process reads its part in blocks (numbers only there), and reads the part's text again
# once the processes have typed the column as text. The model is one process's.
rng = np.random.default_rng(4)
mixed = ["x,c,y"]
for i in range(400):
    # (the text rows the shorter: the byte cut falls after row 200)
    c = ("r", "b")[i % 2] if i < 200 else (f"{i / 8:.1f}" if i % 10 == 0 else "NA")
    mixed.append(f"{rng.normal():.6f},{c},{i % 2}")
open(os.path.join(WORK, "mixed.csv"), "w").write("\n".join(mixed) + "\n")
args = ["mixed.csv", "--layers", "4", "--epochs", "3", "--batch", "50", "--val", "0",
        "--impute", "mean", "--dtype", "float64"]
train(0, args, "mixed-1.safetensors")
train(2, args, "mixed-2.safetensors")
d = rel_diff("mixed-1.safetensors", "mixed-2.safetensors")
print(f"a text column with numbers in one part: N = 2 against one process {d:.3g}")
check(d <= 1e-10, f"a text column with numbers in one part: {d}")

# Without a header, a first row longer than the prefix the header is looked for in (64 KiB).
wide = np.random.default_rng(2).integers(0, 10, size=(60, 34001)).astype(float)
wide[:, -1] = np.arange(60) % 2
np.savetxt(os.path.join(WORK, "wide.csv"), wide, delimiter=",", fmt="%g")
WIDE = ["wide.csv", "--no-header", "--layers", "4", "--epochs", "2", "--dtype", "float64",
        "--val", "0", "--batch", "8"]
train(0, WIDE, "wide-1.safetensors")
train(2, WIDE, "wide-np2.safetensors")
d = rel_diff("wide-1.safetensors", "wide-np2.safetensors")
print(f"wide rows without a header ({os.path.getsize(os.path.join(WORK, 'wide.csv')) // 60} bytes each): "
      f"N = 2 against one process {d:.3g}")
check(d <= 1e-10, f"wide rows: N = 2 differs by {d:.3g}")

p = run(MPIRUN + ["-np", "2", BIN, "predict", "digits-1.safetensors", "digits.csv"], timeout=60, ok=False)
check(p.returncode != 0 and p.stderr.count("runs in one process") == 1,
      f"predict under mpirun: {p.returncode} {p.stderr}")

# --- memory -----------------------------------------------------------------------------------

if os.environ.get("CHAINRULE_SANITIZED"):  # ASan's shadow memory is not the process's
    print(f"{len(failures)} failures (memory not measured under ASan)")
    sys.exit(1 if failures else 0)

rng = np.random.default_rng(0)
block = rng.normal(size=(10000, 20))
block = np.column_stack([block, (block[:, 0] > 0).astype(int)])
import io
s = io.StringIO()
np.savetxt(s, block, delimiter=",", fmt="%.6f")
text = s.getvalue()
with open(os.path.join(WORK, "big.csv"), "w") as f:
    f.write(",".join([f"x{i}" for i in range(20)] + ["y"]) + "\n")
    for _ in range(40):
        f.write(text)
size = os.path.getsize(os.path.join(WORK, "big.csv"))
MEM = ["big.csv", "--layers", "16", "--epochs", "1", "--batch", "256", "--val", "0.1", "--quiet",
       "--threads", "1", "--out", "big.safetensors"]


def peaks_of(ranks, args, name):
    """Peak RSS in MiB of each process (GNU time, one file per rank)."""
    if ranks == 0:
        run(["/usr/bin/time", "-f", "%M", "-o", f"{name}.0", BIN, "train"] + args)
    else:
        run(MPIRUN + ["-np", str(ranks), "sh", "-c",
                      'exec /usr/bin/time -f %M -o "$0.$OMPI_COMM_WORLD_RANK" "$@"', name, BIN,
                      "train"] + args)
    return [int(open(os.path.join(WORK, f"{name}.{r}")).read().split()[-1]) / 1024
            for r in range(max(ranks, 1))]


peak1 = peaks_of(0, MEM, "mem-one")[0]
peaks = peaks_of(2, MEM, "mem-two")
# The fixed part: a process (and a rank) on a tiny data set.
TINY = ["digits.csv", "--epochs", "1", "--quiet", "--out", "tiny.safetensors", "--threads", "1"]
base1 = peaks_of(0, TINY, "mem-tiny-one")[0]
fixed = max(peaks_of(2, TINY, "mem-tiny-two"))
bound = (peak1 - base1) / 2 + fixed + 8
print(f"memory: {size / 2**20:.0f} MiB of CSV (400000 rows): one process {peak1:.0f} MiB peak "
      f"({base1:.0f} on digits); N = 2: {', '.join(f'{p:.0f}' for p in peaks)} MiB per rank "
      f"({fixed:.0f} on digits); bound: half of one process's data part + a rank's fixed part + 8 "
      f"= {bound:.0f} MiB")
check(len(peaks) == 2 and max(peaks) <= bound, f"memory: a rank's peak {max(peaks):.0f} MiB is over {bound:.0f}")

print(f"{len(failures)} failures")
sys.exit(1 if failures else 0)
