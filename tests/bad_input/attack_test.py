#!/usr/bin/env python3
"""The outside attack of issue 15, as processes: every class of it (files changing while read,
pipes, devices, planted symlinks, full disks, checkpoints that choose paths, memory and time
bombs, flags) must end in exit 0 with the right result, or exit 2 with one line naming the file
and what was expected; never a signal, a hang, a partial result or a clobbered file.

Usage: attack_test.py CHAINRULE WORKDIR
"""
import gzip
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time

chainrule, work = sys.argv[1:3]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failures = []
W = lambda name: os.path.join(work, name)


def run(args, stdin=None, timeout=120, env=None):
    p = subprocess.run([chainrule, *args], input=stdin, capture_output=True, timeout=timeout,
                       env=env)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}", flush=True)
    if not ok:
        failures.append(f"{name}: {detail}")


def expect_error(name, args, pattern, stdin=None, **kw):
    code, out, err = run(args, stdin=stdin, **kw)
    lines = err.strip().splitlines()
    ok = code == 2 and len(lines) == 1 and re.search(pattern, lines[0]) is not None
    check(name, ok, f"exit {code}, stderr {err.strip()[:300]!r}, expected /{pattern}/")
    return code, out, err


def write(name, text):
    with open(W(name), "wb") as f:
        f.write(text if isinstance(text, bytes) else text.encode())
    return W(name)


# A data set with a clear answer: y = 1 when a + b > 0.
rows = [(i % 17 - 8, (i * 7) % 13 - 6) for i in range(400)]
data = write("d.csv", "a,b,y\n" + "".join(f"{a},{b},{int(a + b > 0)}\n" for a, b in rows))
TRAIN = ["--quiet", "--epochs", "3", "--layers", "4", "--seed", "1"]
code, _, err = run(["train", data, *TRAIN, "--out", W("m.safetensors")])
assert code == 0, err
model = W("m.safetensors")

# --- 1. A file truncated or rewritten while it is read: an error or the data, never a signal.
big = W("big.csv")
with open(big, "w") as f:
    f.write("a,b,y\n")
    line = "".join(f"{a},{b},{int(a + b > 0)}\n" for a, b in rows)
    for _ in range(int(60e6 / len(line))):  # 60 MB
        f.write(line)
big_bytes = open(big, "rb").read()
for command in (["train", big, "--quiet", "--epochs", "1", "--layers", "2", "--out", W("t.st")],
                ["predict", model, big, "--out", W("p.csv")], ["eval", model, big]):
    outcomes = set()
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2):
        with open(big, "wb") as f:
            f.write(big_bytes)
        p = subprocess.Popen([chainrule, *command], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        time.sleep(delay)
        os.truncate(big, len(big_bytes) // 3)
        _, err = p.communicate(timeout=120)
        outcomes.add(p.returncode)
        lines = err.decode().strip().splitlines()
        good = p.returncode == 0 or (p.returncode == 2 and len(lines) == 1)
        check(f"truncated while read: {command[0]} after {delay} s", good,
              f"exit {p.returncode} {err.decode()[:200]!r}")
with open(big, "wb") as f:
    f.write(big_bytes)

# --- 3. Pipes are read once, whole: the same rows as the file itself.
code, out, err = run(["train", "/dev/stdin", *TRAIN, "--out", W("pipe.st")],
                     stdin=open(data, "rb").read())
check("train from a pipe sees every row", code == 0 and "on 360 rows (40 for validation)" in out,
      out + err)
code, out, err = run(["train", "/dev/stdin", *TRAIN, "--out", W("pipegz.st")],
                     stdin=gzip.compress(open(data, "rb").read()))
check("train from a gzip stream on a pipe sees every row",
      code == 0 and "on 360 rows (40 for validation)" in out, out + err)
check("a pipe trains the same model as the file",
      open(W("pipe.st"), "rb").read() == open(W("pipegz.st"), "rb").read())
code, out, err = run(["predict", model, "/dev/stdin"], stdin=open(data, "rb").read())
check("predict from a pipe: a row out for every row in", code == 0 and out.count("\n") == 401,
      f"{out.count(chr(10))} lines, {err}")

# --- 4. Non-finite outputs are refused, with the row's line.
reg = write("reg.csv", "a,y\n" + "".join(f"{i},{2 * i + 1}\n" for i in range(50)))
code, _, err = run(["train", reg, "--quiet", "--epochs", "2", "--layers", "2", "--activation",
                    "relu", "--scale", "none", "--out", W("reg.st")])
assert code == 0, err
huge = write("huge.csv", "a,y\n1,3\n1e308,1\n")
expect_error("predict refuses a non-finite output", ["predict", W("reg.st"), huge],
             r"huge\.csv:3: the model's output for this row is not finite")
expect_error("eval refuses a non-finite output", ["eval", W("reg.st"), huge],
             r"huge\.csv:3: the model's output for this row is not finite")

# --- 5. Decimal commas: a warning with the column and the option, and the option reads them.
euro = write("euro.csv", "a;b;y\n" + "".join(f"{i},5;{i % 7},25;{i % 11},{i % 3}\n"
                                              for i in range(60)))
code, out, err = run(["train", euro, "--delimiter", ";", *TRAIN, "--out", W("euro.st")])
check("decimal commas read as text are named, with --decimal-comma",
      code == 0 and re.search(r"warning: column 'a' holds numbers with a decimal comma.*"
                              r"--decimal-comma", err) is not None, err)
check("a target of many distinct values read as text gets a --task regress hint",
      "use --task regress" in err, err)
code, out, err = run(["train", euro, "--delimiter", ";", "--decimal-comma", *TRAIN,
                      "--out", W("euro2.st")])
code2, info, _ = run(["info", W("euro2.st"), "--json"])
check("--decimal-comma reads them as numbers (a regression on numeric features)",
      code == 0 and "warning" not in err and '"task": "regress"' in info.replace('\\"', '"'),
      err + info[:300])

# --- 6. Memory and time bombs: refused early with the limit, exit 2, never exit 3.
blank = W("blank.csv.gz")
with gzip.open(blank, "wb", compresslevel=9) as f:
    f.write(b"a,y\n1,2\n" + b"\n" * (64 << 20))
check("the gzip bomb is small", os.path.getsize(blank) < 200_000)
expect_error("a gzip bomb hits the input limit", ["train", blank, "--max-input-size", "16M",
                                                   "--out", W("x.st")],
             r"blank\.csv\.gz: the data is larger than the input size limit of 16\.0 MiB.*"
             r"--max-input-size")
start = time.time()
expect_error("/dev/zero stops at the first block", ["train", "/dev/zero", "--out", W("x.st")],
             r"/dev/zero:1:1: a NUL byte")
check("/dev/zero is refused within 5 s", time.time() - start < 5)
cats = write("cats.csv", "id,a,y\n" + "".join(f"u{i},{i % 5},{i % 2}\n" for i in range(20000)))
expect_error("a text column of 20000 categories", ["train", cats, "--out", W("x.st")],
             r"cats\.csv: the text column 'id' has more than 10000 categories.*--max-categories")
classes = write("classes.csv", "a,y\n" + "".join(f"{i % 5},c{i}\n" for i in range(20000)))
expect_error("a target of 20000 classes", ["train", classes, "--out", W("x.st")],
             r"classes\.csv: the target column 'y' has more than 10000 distinct values.*"
             r"--max-classes")
expect_error("--layers 1000000,1000000 is estimated and refused",
             ["train", data, "--layers", "1000000,1000000", "--out", W("x.st")],
             r"the run needs about .* TiB .* more than the .* of memory available")
expect_error("--max-memory bounds the estimate",
             ["train", data, "--layers", "1000", "--max-memory", "1M", "--out", W("x.st")],
             r"the run needs about .* more than the 1\.00 MiB allowed")
start = time.time()
code, _, err = run(["train", data, "--threads", "1024", *TRAIN, "--out", W("t1024.st")])
check("--threads 1024 on a small file ends at once", code == 0 and time.time() - start < 30, err)

# --- 9. Devices and pipes are never replaced.
dev = W("full_device")
os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # /dev/full's numbers
expect_error("--out naming a device is refused", ["train", data, *TRAIN, "--out", dev],
             r"full_device: a character device, not a regular file: refusing")
check("the device is still a device", stat.S_ISCHR(os.lstat(dev).st_mode))
expect_error("predict --out a full device fails", ["predict", model, data, "--out", dev],
             r"full_device: cannot write: No space left on device")
check("the device is still a device after predict", stat.S_ISCHR(os.lstat(dev).st_mode))
fifo = W("fifo")
os.mkfifo(fifo)
got = []
reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
reader.start()
code, _, err = run(["predict", model, data, "--out", fifo])
reader.join(30)
check("predict --out a pipe writes into the pipe", code == 0 and got and
      got[0].count(b"\n") == 401 and stat.S_ISFIFO(os.lstat(fifo).st_mode), err)
os.mkdir(W("adir"))
expect_error("--out naming a directory", ["train", data, *TRAIN, "--out", W("adir")],
             r"adir: a directory, not a regular file")

# Outputs over inputs: data the user has nowhere else.
data_copy = write("copy.csv", open(data).read())
expect_error("train --out naming the data file", ["train", data_copy, *TRAIN, "--out", data_copy],
             r"--out .*copy\.csv is the data file .*copy\.csv: refusing to overwrite it")
expect_error("predict --out naming the data file", ["predict", model, data_copy, "--out",
                                                    data_copy],
             r"--out .*copy\.csv is the input file .*: refusing to overwrite it")
expect_error("predict --out naming the model", ["predict", model, data_copy, "--out", model],
             r"--out .*m\.safetensors is the input file")
check("the data file is intact", open(data_copy).read() == open(data).read())
expect_error("--log naming the model", ["train", data, *TRAIN, "--out", W("lm.st"), "--log",
                                        W("lm.st")], r"--log .*lm\.st is also the model")

# --- 10. A symlink planted where a temporary file might go is not followed.
victim = write("victim.txt", "precious")
for pid in range(os.getpid(), os.getpid() + 200):
    os.symlink(victim, W(f"s.safetensors.tmp.{pid}"))
code, _, err = run(["train", data, *TRAIN, "--out", W("s.safetensors")])
check("planted temp-name symlinks: the model is written, the victim untouched",
      code == 0 and open(victim).read() == "precious", err)
link = W("link.safetensors")
os.symlink("s.safetensors", link)
code, _, err = run(["train", data, *TRAIN, "--seed", "2", "--out", link])
check("--out through a symlink the user made replaces its target and keeps the link",
      code == 0 and os.path.islink(link) and open(W("s.safetensors"), "rb").read() ==
      open(link, "rb").read(), err)

# --- 11. A checkpoint does not choose where the model goes.
os.makedirs(W("a"))
os.makedirs(W("b"))
code, _, err = run(["train", data, *TRAIN, "--epochs", "2", "--checkpoint-every", "1",
                    "--out", W("a/orig.st")])
assert code == 0, err
shutil.move(W("a/orig.st.ckpt"), W("b/moved.ckpt"))
with open(W("a/orig.st"), "wb") as f:
    f.write(b"someone else's file")
expect_error("--resume with a stored path outside the checkpoint's directory",
             ["train", "--resume", W("b/moved.ckpt"), "--quiet"],
             r"moved\.ckpt: the checkpoint names .*orig\.st as its model file, outside the "
             r"checkpoint's directory: say where to write the model with --out")
check("the other directory's file is untouched", open(W("a/orig.st"), "rb").read() ==
      b"someone else's file")
code, _, err = run(["train", "--resume", W("b/moved.ckpt"), "--out", W("b/resumed.st")])
check("--resume with --out writes there and says so",
      code == 0 and os.path.exists(W("b/resumed.st")) and "resumed.st" in err, err)

# --- 12. Full disks are errors.
with open("/dev/full", "wb") as full:
    p = subprocess.run([chainrule, "predict", model, data], stdout=full, stderr=subprocess.PIPE)
check("predict > /dev/full exits 2", p.returncode == 2 and b"No space left" in p.stderr,
      p.stderr.decode())
with open("/dev/full", "wb") as full:
    p = subprocess.run([chainrule, "eval", model, data], stdout=full, stderr=subprocess.PIPE)
check("eval > /dev/full exits 2", p.returncode == 2 and b"No space left" in p.stderr,
      p.stderr.decode())
code, _, err = run(["train", data, *TRAIN, "--log", "/dev/full", "--out", W("logfull.st")])
check("--log on a full disk: exit 2, and the model is still written",
      code == 2 and "No space left" in err and os.path.exists(W("logfull.st")), err)

# --- 13. Output locations are checked before training starts.
for flag in ("--out", "--checkpoint", "--log"):
    start = time.time()
    expect_error(f"{flag} in a missing directory is refused before training",
                 ["train", data, "--epochs", "100000", "--quiet", flag, W("nodir/f")],
                 r"nodir/f: cannot write the .*: the directory .*nodir does not exist")
    check(f"{flag}: refused within 5 s", time.time() - start < 5)

# --- 14 and 15. Flags and messages.
code, out, err = run(["explain", model, data, "--row", "0", "--param", "layers.0.weight[0,1]"])
check("explain --param with a bracketed index", code == 0 and "layers.0.weight[0,1]" in out, err)
for name, args, pattern in (
        ("--seed -1", ["--seed", "-1"], r"--seed: expected a whole number"),
        ("--seed 1e23", ["--seed", "1e23"], r"--seed: expected a whole number"),
        ("--drop the target", ["--drop", "y"], r"column 'y' is the target"),
        ("--layers 10,,5", ["--layers", "10,,5"], r"--layers: an empty item"),
        ("--skip-rows -1", ["--skip-rows", "-1"], r"--skip-rows: expected a whole number"),
        ("--lr 1e-320", ["--lr", "1e-320"], r"--lr: '1e-320' is too small"),
        ("--max-input-size junk", ["--max-input-size", "lots"], r"'lots' is not a size"),
        ("an empty --target", ["--target", ""], r"--target: expected a value, got ''"),
        ("an empty --out", ["--out", ""], r"--out: expected a value, got ''")):
    expect_error(name, ["train", data, "--quiet", "--out", W("x.st"), *args], pattern)
code, _, err = run(["train", data, *TRAIN, "--batch", "100000000", "--out", W("bb.st")])
check("a batch larger than the data is estimated as the data, and trains", code == 0, err)
tiny = write("tiny.csv", "a,y\n1e-400,0\n2,1\n3,0\n4,1\n")
code, _, err = run(["train", tiny, *TRAIN, "--val", "0", "--out", W("tiny.st")])
check("1e-400 in a file reads as 0 (the nearest double)", code == 0, err)
code, out, err = run(["predict", model, data, "--keep", "y"])
check("predict --keep <target> gives distinct column names",
      code == 0 and out.splitlines()[0] == "y,y_predicted,p_0,p_1", out[:100] + err)

print(f"{len(failures)} failed" if failures else "all attack cases passed")
for f in failures:
    print("  " + f)
sys.exit(1 if failures else 0)
