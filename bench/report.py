#!/usr/bin/python3
"""Turns bench/run's results.json into the table of bench/RESULTS.md: one row per workload and
peer, chainrule's ratio to each peer, and each target of the performance issue checked.

  report.py RESULTS_JSON [--write RESULTS_MD]
"""
import json
import os
import platform
import statistics
import subprocess
import sys

rows = json.load(open(sys.argv[1]))
write = sys.argv[sys.argv.index("--write") + 1] if "--write" in sys.argv else None


def find(workload, peer, **kw):
    for r in rows:
        if r["workload"] == workload and r["peer"] == peer and all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def note(r):
    return f" ({r['note']})" if r.get("note") else ""


def thr(r, threads):
    """The thread count, and the cores the process kept busy (CPU time / wall time) if known."""
    return f"{threads} ({r['cores']:.1f} cores)" if "cores" in r else f"{threads}"


def fmt_s(s):
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


lines = []
targets = []
out = lines.append

out("| workload | peer | threads | median time | samples/s | chainrule's speed-up | result | peak RSS |")
out("|---|---|---|---|---|---|---|---|")

# W1
c = find("w1", "chainrule")
for peer in ("chainrule", "hand-written loop", "FANN", "PyTorch"):
    r = find("w1", peer)
    if not r:
        continue
    ratio = r["seconds"] / c["seconds"]
    out(f"| W1 tutorial, 4000 steps | {peer} | 1 | {fmt_s(r['seconds'])} | "
        f"{4000 / r['seconds']:,.0f} | {ratio:.3g}× | final loss {r['final_loss']:.10g} | "
        f"{r['process_rss_mib']:.0f} MiB |")
hand, torch = find("w1", "hand-written loop"), find("w1", "PyTorch")
targets.append(("W1 within 1.3× of the hand-written loop", c["seconds"] / hand["seconds"] <= 1.3,
                f"{c['seconds'] / hand['seconds']:.2f}× its time"))
fann = find("w1", "FANN")
if fann:
    targets.append(("W1 faster than FANN (no kernel for the tutorial's sizes)",
                    c["seconds"] < fann["seconds"],
                    f"{fann['seconds'] / c['seconds']:.2f}× FANN's speed"))
targets.append(("W1 at least 100× faster than PyTorch", torch["seconds"] / c["seconds"] >= 100,
                f"{torch['seconds'] / c['seconds']:,.0f}×"))
targets.append(("W1 same final loss as the hand-written loop and PyTorch",
                c["final_loss"] == hand["final_loss"] and abs(c["final_loss"] - torch["final_loss"]) < 1e-15,
                f"{c['final_loss']:.17g} / {hand['final_loss']:.17g} / {torch['final_loss']:.17g}"))

# W2
for threads in (1, 2):
    c = find("w2", "chainrule", threads=threads)
    t = find("w2", "PyTorch", threads=threads)
    lt = find("w2", "libtorch", threads=threads)
    for r in (c, t, lt):
        if r:
            out(f"| W2 Fashion-MNIST 784-128-64-10, 1 epoch | {r['peer']}{note(r)} | {thr(r, threads)} | "
                f"{fmt_s(r['seconds'])} | {r['samples_per_s']:,.0f} | "
                f"{t['seconds'] / r['seconds']:.2f}× vs PyTorch | test accuracy {r['accuracy']:.4f} | "
                f"{r['process_rss_mib']:.0f} MiB |")
    targets.append((f"W2 at least 1.5× PyTorch's samples/s on {threads} thread(s)",
                    c["samples_per_s"] >= 1.5 * t["samples_per_s"],
                    f"{c['samples_per_s'] / t['samples_per_s']:.2f}×"))
    if lt and threads == 2:
        targets.append(("W2 at least 2× libtorch's samples/s on 2 cores (its best setting)",
                        c["samples_per_s"] >= 2 * lt["samples_per_s"],
                        f"{c['samples_per_s'] / lt['samples_per_s']:.2f}×{note(lt)}"))
    targets.append((f"W2 test accuracy within 0.5 points of PyTorch's ({threads} thread(s))",
                    abs(c["accuracy"] - t["accuracy"]) <= 0.005 or c["accuracy"] > t["accuracy"],
                    f"{100 * c['accuracy']:.2f}% vs {100 * t['accuracy']:.2f}%"))
s = find("w2", "scikit-learn")
if s:
    c = find("w2", "chainrule", threads=1)
    out(f"| W2 Fashion-MNIST 784-128-64-10, 1 epoch | scikit-learn | 1 | {fmt_s(s['seconds'])} | "
        f"{s['samples_per_s']:,.0f} | {s['seconds'] / c['seconds']:.2f}× | test accuracy "
        f"{s['accuracy']:.4f} | {s['process_rss_mib']:.0f} MiB |")
dataset_mib = 60000 * 785 * 4 / 2**20
c = find("w2", "chainrule", threads=1)
targets.append(("W2 peak RSS at most 1.5 × the float32 dataset + 64 MiB "
                f"({1.5 * dataset_mib + 64:.0f} MiB)",
                c["process_rss_mib"] <= 1.5 * dataset_mib + 64, f"{c['process_rss_mib']:.0f} MiB"))

# W2 against the cores' multiply-add peak, counting the work a step needs: per sample and weight
# a multiply-add forward and one for its gradient, and one more for ∂L/∂input of every layer but
# the first (nothing needs the inputs' gradient). 2 flops a multiply-add.
W2_FLOPS = 2 * (2 * (784 * 128 + 128 * 64 + 64 * 10) + (128 * 64 + 64 * 10))  # per sample
for threads in (1, 2):
    c, pk = find("w2", "chainrule", threads=threads), find("peak", "AVX-512 FMA", threads=threads) \
        or find("peak", "AVX2 FMA", threads=threads) or find("peak", "SSE", threads=threads)
    if c and pk:
        gflops = W2_FLOPS * 60000 / c["seconds"] / 1e9
        out(f"| W2 limit: float32 multiply-add peak ({pk['peer']}) | measured | {threads} | | | | "
            f"{pk['gflops']:.1f} GFLOP/s; W2 reaches {gflops:.1f} = {100 * gflops / pk['gflops']:.0f}% | |")
        targets.append((f"W2 share of the measured multiply-add peak on {threads} core(s)"
                        + (" at least 50%" if threads == 1 else " (reported)"),
                        gflops >= 0.5 * pk["gflops"] if threads == 1 else True,
                        f"{100 * gflops / pk['gflops']:.0f}% ({gflops:.1f} of {pk['gflops']:.1f} GFLOP/s)"))
c1, c2 = find("w2", "chainrule", threads=1), find("w2", "chainrule", threads=2)
cores = find("w2-cores", "chainrule")
even = None
if c1 and cores:
    # Half the work on each core at the speed it had with the other busy, nothing lost to the split;
    # and the work shared in proportion to those speeds instead of in halves.
    even = max(cores["core0"], cores["core1"]) / 2 / c1["seconds"]
    shared = 1 / (1 / cores["core0"] + 1 / cores["core1"]) / c1["seconds"]
    out(f"| W2 limit: a 1-thread epoch on each core at once (two processes) | chainrule | 1 + 1 | "
        f"{fmt_s(cores['seconds'])} | | | core 0 {fmt_s(cores['core0'])}, core 1 {fmt_s(cores['core1'])}: "
        f"half the work on each at best {even:.2f}× the 1-thread time, shared by speed {shared:.2f}× | |")
pairs = find("w2-pairs", "chainrule")
if pairs:
    # One thread and two in turns, pair by pair: the ratio the target is checked on.
    # Each pair with the cores' line round trip measured just before it (runs before the twentieth
    # session have none).
    trips = pairs.get("lines_ns") or [None] * len(pairs["ratios"])
    spread = ", ".join(f"{x:.2f}" + (f" ({ns:.0f} ns)" if ns else "") for x, ns in zip(pairs["ratios"], trips))
    out(f"| W2 on 2 threads against 1, in turns ({len(pairs['ratios'])} pairs) | chainrule | 2 vs 1 | "
        f"{fmt_s(pairs['seconds'])} vs {fmt_s(pairs['one'])} | | | median pair {pairs['ratio']:.2f}× "
        f"the 1-thread time (all pairs{', each with a cache line’s round trip between the cores' if pairs.get('lines_ns') else ''}: "
        f"{spread}) | |")
if c1 and c2:
    bound = f"; bound from the cores, halves: {even:.2f}×" if even else ""
    table = f"the table's medians {c2['seconds'] / c1['seconds']:.2f}× ({fmt_s(c2['seconds'])} vs {fmt_s(c1['seconds'])})"
    if pairs:
        near = [r for r, ns in zip(pairs["ratios"], trips) if ns and ns < 200]
        far = [r for r, ns in zip(pairs["ratios"], trips) if ns and ns >= 200]
        split = "".join(f"; pairs with the cores' line round trip {name} 200 ns: median {statistics.median(rs):.2f}× ({len(rs)})"
                        for name, rs in (("under", near), ("over", far)) if rs)
        targets.append(("W2 on 2 threads in at most 0.6× the 1-thread time (median of pairs in turns)",
                        pairs["ratio"] <= 0.6, f"{pairs['ratio']:.2f}× ({fmt_s(pairs['seconds'])} vs "
                        f"{fmt_s(pairs['one'])}){split}; {table}{bound}"))
    else:
        targets.append(("W2 on 2 threads in at most 0.6× the 1-thread time", c2["seconds"] <= 0.6 * c1["seconds"],
                        f"{table}{bound}"))

# W2 through the command line: the whole process.
z = find("zcat", "zcat")
for threads in (1, 2):
    r = find("w2-cli", "chainrule train", threads=threads)
    if r:
        out(f"| W2 through `chainrule train`, whole process | chainrule train | {threads} | "
            f"{fmt_s(r['seconds'])} | {r['samples_per_s']:,.0f} | | training {fmt_s(r['train_seconds'])}, "
            f"reading and preprocessing (before the first epoch) {fmt_s(r['load_seconds'])} | {r['process_rss_mib']:.0f} MiB |")
if z:
    out(f"| reading floor: `zcat` of the IDX files | zcat | 1 | {fmt_s(z['seconds'])} | | | | |")
r = find("w2-cli", "chainrule train", threads=1)
if r:
    limit = 1.5 * 60000 * 784 * 4 / 2**20 + 64
    targets.append((f"`chainrule train` W2 peak RSS at most 1.5× the float32 data + 64 MiB ({limit:.0f} MiB)",
                    r["process_rss_mib"] <= limit, f"{r['process_rss_mib']:.0f} MiB"))
    if z:
        targets.append(("`chainrule train` W2 reading and preprocessing at most 2× zcat",
                        r["load_seconds"] <= 2 * z["seconds"],
                        f"{r['load_seconds'] / z['seconds']:.2f}× ({fmt_s(r['load_seconds'])} vs {fmt_s(z['seconds'])})"))

# W6: the README's recipe, the whole process.
r = find("w6", "chainrule train")
if r:
    out(f"| W6 Fashion-MNIST to 90%, whole process (`{r['recipe']}`) | chainrule train | "
        f"{r['threads']} | {fmt_s(r['seconds'])} | | | test accuracy {r['accuracy']:.4f} "
        f"(the lowest of the runs, one seed each: {r['accuracy_min']:.4f}) | {r['process_rss_mib']:.0f} MiB |")
    targets.append(("W6 at least 0.90 test accuracy in at most 30 s, whole process",
                    r["accuracy_min"] >= 0.90 and r["seconds"] <= 30,
                    f"{r['accuracy_min']:.4f} (the lowest, one seed per run), {fmt_s(r['seconds'])} (median)"))

# W3
for threads in (1, 2):
    c = find("w3", "chainrule", threads=threads, dtype="float32")
    t = find("w3", "PyTorch", threads=threads, dtype="float32")
    g = find("gemm", "OpenBLAS sgemm", threads=threads)
    for r in (r for r in (c, t, find("w3", "libtorch", threads=threads)) if r):
        out(f"| W3 784-1024-1024-10, batch 256 | {r['peer']}{note(r)} | {thr(r, threads)} | "
            f"{fmt_s(r['seconds'])} | "
            f"{r['samples_per_s']:,.0f} | {t['seconds'] / r['seconds']:.2f}× vs PyTorch | "
            f"{r['gflops']:.1f} GFLOP/s = {100 * r['gflops'] / g['gflops']:.0f}% of sgemm | "
            f"{r['process_rss_mib']:.0f} MiB |")
    out(f"| W3 limit: OpenBLAS sgemm (256×1024)·(1024×1024) | OpenBLAS | {threads} | | | | "
        f"{g['gflops']:.1f} GFLOP/s | |")
    targets.append((f"W3 at least 75% of the measured sgemm throughput on {threads} thread(s)",
                    c["gflops"] >= 0.75 * g["gflops"], f"{100 * c['gflops'] / g['gflops']:.0f}%"))
    # bfloat16 products (--dtype bfloat16) beside PyTorch's CPU autocast, where the CPU has them.
    cb = find("w3", "chainrule", threads=threads, dtype="bfloat16")
    tb = find("w3", "PyTorch", threads=threads, dtype="bfloat16")
    if cb and tb:
        for r in (cb, tb):
            out(f"| W3 in bfloat16 (products; float32 weights) | {r['peer']}{note(r)} | "
                f"{thr(r, threads)} | {fmt_s(r['seconds'])} | {r['samples_per_s']:,.0f} | "
                f"{tb['seconds'] / r['seconds']:.2f}× vs PyTorch's autocast | "
                f"{r['gflops']:.1f} GFLOP/s = {r['samples_per_s'] / c['samples_per_s']:.2f}× "
                f"chainrule's float32 | {r['process_rss_mib']:.0f} MiB |")
        targets.append((f"W3 in bfloat16 wins clearly: at least 1.3× float32's samples/s "
                        f"({threads} thread(s))", cb["samples_per_s"] >= 1.3 * c["samples_per_s"],
                        f"{cb['samples_per_s'] / c['samples_per_s']:.2f}×"))
        targets.append((f"W3 in bfloat16 at least PyTorch's autocast ({threads} thread(s))",
                        cb["samples_per_s"] >= tb["samples_per_s"],
                        f"{cb['samples_per_s'] / tb['samples_per_s']:.2f}×"))
a32, a16 = find("w3-accuracy", "chainrule train", dtype="float32"), \
    find("w3-accuracy", "chainrule train", dtype="bfloat16")
if a32 and a16:
    for r in (a32, a16):
        out(f"| W3's network on all of Fashion-MNIST, whole process (`{r['recipe']} --dtype "
            f"{r['dtype']}`) | chainrule train | {r['threads']} | {fmt_s(r['seconds'])} | | "
            f"{a32['seconds'] / r['seconds']:.2f}× vs float32 | test accuracy {r['accuracy']:.4f} | "
            f"{r['process_rss_mib']:.0f} MiB |")
    targets.append(("bfloat16 costs at most 0.5 points of test accuracy (W3's network, 3 epochs)",
                    a16["accuracy"] >= a32["accuracy"] - 0.005,
                    f"{a16['accuracy']:.4f} vs {a32['accuracy']:.4f} in float32"))

# W4
for threads in (1, 2):
    for batch in (1, 1024):
        c = find("w4", "chainrule", threads=threads, batch=batch)
        t = find("w4", "PyTorch", threads=threads, batch=batch)
        for r in (r for r in (c, t, find("w4", "libtorch", threads=threads, batch=batch)) if r):
            out(f"| W4 inference, batch {batch} | {r['peer']}{note(r)} | {thr(r, threads)} | "
                f"{fmt_s(r['seconds'])} | "
                f"{r['samples_per_s']:,.0f} | {c['samples_per_s'] / t['samples_per_s']:.2f}× vs "
                f"PyTorch | | {r['process_rss_mib']:.0f} MiB |")
        need = 5 if batch == 1 else 1
        targets.append((f"W4 batch {batch}: at least {need}× PyTorch's throughput ({threads} thread(s))",
                        c["samples_per_s"] >= need * t["samples_per_s"],
                        f"{c['samples_per_s'] / t['samples_per_s']:.2f}×"))

# W4 against ONNX Runtime on the exported model, the two run in turns.
for threads in (1, 2):
    for batch in (1, 1024):
        c = find("w4-ort", "chainrule", threads=threads, batch=batch)
        o = find("w4-ort", "ONNX Runtime", threads=threads, batch=batch)
        if not (c and o):
            continue
        for r in (c, o):
            out(f"| W4 inference, batch {batch}, beside ONNX Runtime | {r['peer']} | {thr(r, threads)} | "
                f"{fmt_s(r['seconds'])} | {r['samples_per_s']:,.0f} | "
                f"{c['samples_per_s'] / o['samples_per_s']:.2f}× vs ONNX Runtime | | "
                f"{r['process_rss_mib']:.0f} MiB |")
        targets.append((f"W4 batch {batch}: at least ONNX Runtime's throughput ({threads} thread(s))",
                        c["samples_per_s"] >= o["samples_per_s"],
                        f"{c['samples_per_s'] / o['samples_per_s']:.2f}×"))

# W5: chainrule on 1 thread and on 2 (the command line's default is every core); pandas reads
# on one thread whatever the machine has.
p = find("w5", "pandas")
for peer, threads in (("chainrule", 1), ("chainrule", 2), ("pandas", 1), ("numpy", 1)):
    r = find("w5", peer, threads=threads) if peer == "chainrule" else find("w5", peer)
    if r:
        out(f"| W5 ingest, 100 MB numeric CSV | {peer} | {threads} | {fmt_s(r['seconds'])} | "
            f"{r['mb_per_s']:.0f} MB/s | {p['seconds'] / r['seconds']:.2f}× vs pandas | "
            f"{r['rows']:,} × {r['cols']} | {r['process_rss_mib']:.0f} MiB |")
for threads, times in ((1, 5), (2, 8)):  # issue 14: 5× pandas on one thread, 8× on two
    c = find("w5", "chainrule", threads=threads)
    targets.append((f"W5 at least {times}× pandas.read_csv (chainrule on {threads} thread(s))",
                    c["mb_per_s"] >= times * p["mb_per_s"], f"{c['mb_per_s'] / p['mb_per_s']:.2f}×"))

b = find("blas", "OpenBLAS")
kernels = b["kernels"] if b else "?"
removed = f"; OPENBLAS_CORETYPE={b['removed']} removed from the environment" if b and b.get("removed") else ""
# A 1 GB numeric CSV through `chainrule train`: peak RSS against its float32 matrix.
r = find("csv-1gb", "chainrule train")
for peer in ("chainrule train", "chainrule train --stream off"):
    q = find("csv-1gb", peer)
    if not q:
        continue
    matrix = q["rows"] * q["cols"] * 4 / 2**20
    how = ("read in passes" if q.get("passes") else "read whole") + \
        ("; the same model file both ways" if q.get("same_model") else
         "; **the model files differ**" if "same_model" in q else "")
    out(f"| 1 GB numeric CSV through `chainrule train`, whole process | {peer} | {q['threads']} | "
        f"{fmt_s(q['seconds'])} | | | {q['rows']:,} × {q['cols']}, float32 matrix "
        f"{matrix:.0f} MiB, {how} | {q['process_rss_mib']:.0f} MiB |")
if r:
    matrix = r["rows"] * r["cols"] * 4 / 2**20
    targets.append((f"1 GB CSV through `chainrule train`: peak RSS at most 1.5× its float32 matrix "
                    f"+ 64 MiB ({1.5 * matrix + 64:.0f} MiB)",
                    r["process_rss_mib"] <= 1.5 * matrix + 64, f"{r['process_rss_mib']:.0f} MiB"))

table = "\n".join(lines)
check = "\n".join(f"| {name} | {'met' if ok else '**not met**'} | {value} |" for name, ok, value in targets)
print(table)
print()
print("| target | | measured |\n|---|---|---|\n" + check)

if write:
    cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | sed 's/.*: *//'"],
                         capture_output=True, text=True).stdout.strip()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    torch_v = subprocess.run(["/usr/bin/python3", "-c", "import torch; print(torch.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    blas = subprocess.run(["sh", "-c", "dpkg-query -W -f='${Version}' libopenblas0-pthread"],
                          capture_output=True, text=True).stdout.strip()
    head = ""
    if os.path.exists(write):
        with open(write) as f:
            head = f.read().split("<!-- table -->")[0]
    with open(write, "w") as f:
        f.write(head + "<!-- table -->\n\n")
        f.write(f"Machine: {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB; Debian "
                f"{platform.freedesktop_os_release().get('VERSION_ID', '?')}, OpenBLAS {blas}, "
                f"PyTorch {torch_v}; OpenBLAS's {kernels} kernels (its choice for this CPU{removed}) "
                f"for every peer on OpenBLAS. "
                f"Command: `bench/run --write`.\n\n")
        f.write(table + "\n\n| target | | measured |\n|---|---|---|\n" + check + "\n")
