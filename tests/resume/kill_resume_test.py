#!/usr/bin/env python3
"""Kill real `chainrule train` processes and resume them: the final model must be byte-identical
to the one of an uninterrupted run, and a killed run must never leave a damaged file behind.

Usage: kill_resume_test.py CHAINRULE WORKDIR

Kill points: SIGINT and SIGTERM after a given epoch has been logged (part way through the next
one), SIGINT during a resumed run, and a chain of SIGKILLs at fixed times, each resumed from
whatever checkpoint survived, until the run completes.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

chainrule, work = sys.argv[1], sys.argv[2]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
os.chdir(work)

# 12,000 rows, 40 features, 3 classes: a few tenths of a second per epoch.
rng = np.random.default_rng(3)
X = rng.normal(size=(12000, 40))
y = np.argmax(X[:, :3] + 0.5 * rng.normal(size=(12000, 3)), axis=1)
with open("data.csv", "w") as f:
    f.write(",".join(f"x{i}" for i in range(40)) + ",label\n")
    for row, label in zip(X, y):
        f.write(",".join(f"{v:.6f}" for v in row) + f",c{label}\n")

ARGS = ["--layers", "256,128", "--epochs", "8", "--batch", "16", "--dropout", "0.1",
        "--optimizer", "adam", "--schedule", "cosine", "--patience", "0", "--quiet"]
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def start(out, extra=()):
    return subprocess.Popen([chainrule, "train", "data.csv", *ARGS, "--out", out, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def resume(ckpt, extra=()):
    return subprocess.Popen([chainrule, "train", "--resume", ckpt, "--quiet", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def epochs_logged(log):
    try:
        with open(log) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def wait_for_epoch(proc, log, epoch):
    while epochs_logged(log) < epoch:
        if proc.poll() is not None:
            raise SystemExit(f"the run ended before epoch {epoch} was logged")
        time.sleep(0.005)


t0 = time.time()
ref = subprocess.run([chainrule, "train", "data.csv", *ARGS, "--out", "ref.safetensors"],
                     capture_output=True, text=True)
check(ref.returncode == 0, f"the uninterrupted run succeeds ({time.time() - t0:.1f} s)")
reference = read("ref.safetensors")

# A good model already at --out (another run's): no kill may damage or replace it.
subprocess.run([chainrule, "train", "data.csv", "--layers", "4", "--epochs", "1", "--quiet",
                "--out", "keep.safetensors"], check=True, capture_output=True)
keep_before = read("keep.safetensors")

# SIGINT and SIGTERM part way through an epoch: exit 130, one line saying how to resume.
for sig, after_epoch in ((signal.SIGINT, 1), (signal.SIGTERM, 5), (signal.SIGINT, 7)):
    name = signal.Signals(sig).name
    out = f"{name}_{after_epoch}.safetensors"
    log = out + ".log"
    p = start(out, ["--log", log])
    wait_for_epoch(p, log, after_epoch)
    time.sleep(0.03)
    p.send_signal(sig)
    _, err = p.communicate()
    check(p.returncode == 130, f"{name} after epoch {after_epoch}: exit code {p.returncode}")
    lines = err.strip().splitlines()
    check(len(lines) == 1 and f"chainrule train --resume {out}.ckpt" in lines[0],
          f"{name}: one line saying how to resume: {err.strip()!r}")
    check(not os.path.exists(out), f"{name}: no model file written by the interrupted run")
    r = resume(out + ".ckpt", ["--log", log])
    if sig == signal.SIGINT and after_epoch == 1:  # interrupt the resumed run too
        wait_for_epoch(r, log, 3)
        time.sleep(0.05)
        r.send_signal(signal.SIGINT)
        r.communicate()
        check(r.returncode == 130, "SIGINT during the resumed run: exit code 130")
        r = resume(out + ".ckpt", ["--log", log])
    r.communicate()
    check(r.returncode == 0, f"{name}: the resumed run succeeds")
    check(read(out) == reference, f"{name} after epoch {after_epoch}: the resumed model is "
                                  "byte-identical to the uninterrupted run's")
    check(epochs_logged(log) == 8, f"{name}: the log holds each of the 8 epochs once "
                                   f"({epochs_logged(log)} lines)")

# SIGKILL at fixed times, with a checkpoint after every epoch: each kill leaves either the old
# or the new checkpoint, whole; resume from it and kill again until the run completes.
out = "killed.safetensors"
shutil.copy("keep.safetensors", out)  # a good model in place before the run
ckpt = out + ".ckpt"
kill_points = []
p = start(out, ["--checkpoint-every", "1"])
for delay in (0.4, 0.7, 1.1, 0.5, 1.6, 0.9):
    time.sleep(delay)
    if p.poll() is not None:
        break
    p.kill()
    p.wait()
    # A run may finish its model (the rename into place) in the moment before the kill: the file
    # in place is then the finished model. Anything else, a mixture or a truncated file, is loss.
    now = read(out)
    check(now in (keep_before, reference),
          f"SIGKILL after {delay} s: the model file in place is intact (the old one or the "
          "finished one)")
    if now == reference:
        p = None
        break
    if os.path.exists(ckpt):
        state = subprocess.run([chainrule, "info", ckpt], capture_output=True, text=True)
        check(state.returncode == 0, f"SIGKILL after {delay} s: the checkpoint left is whole")
        kill_points.append(delay)
        p = resume(ckpt, ["--checkpoint-every", "1"])
    else:
        kill_points.append(f"{delay} (before the first checkpoint: restarted)")
        p = start(out, ["--checkpoint-every", "1"])
if p is not None:
    p.communicate()
    check(p.returncode == 0, "after the SIGKILLs the last resumed run succeeds")
check(read(out) == reference, f"SIGKILL chain ({len(kill_points)} kills): the final model is "
                              "byte-identical to the uninterrupted run's")
print("SIGKILL points (seconds into each run):", kill_points)

# A checkpoint does not resume on other data.
bad = "other.csv"
with open("data.csv") as f, open(bad, "w") as g:
    lines = f.readlines()
    g.writelines(lines[:1] + lines[2:])
r = subprocess.run([chainrule, "train", "--resume", "SIGTERM_5.safetensors.ckpt", bad],
                   capture_output=True, text=True)
check(r.returncode == 2 and "not the data the checkpoint was trained on" in r.stderr,
      f"resume on other data is refused: {r.stderr.strip()!r}")
r = subprocess.run([chainrule, "train", "--resume", "SIGTERM_5.safetensors.ckpt", "--lr", "0.1"],
                   capture_output=True, text=True)
check(r.returncode == 2 and "--lr" in r.stderr, f"settings cannot change on resume: "
                                                 f"{r.stderr.strip()!r}")

print(f"{len(failures)} failures")
sys.exit(1 if failures else 0)
