#!/usr/bin/python3
"""Runs the Python blocks of docs/model-format.md on models chainrule trained and checks that
they compute what `chainrule predict` prints (and that the checksum is zlib's CRC-32).

Usage: model_format_test.py CHAINRULE_BINARY SOURCE_DIR WORK_DIR
"""
import csv
import json
import os
import re
import subprocess
import sys
import zlib

import numpy as np


def main(binary, source, work):
    os.makedirs(work, exist_ok=True)
    doc = open(f"{source}/docs/model-format.md").read()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    namespace = {}
    exec(blocks[0], namespace)  # read_model
    exec(blocks[1], namespace)  # ACTIVATIONS, preprocess, predict
    reader_lines = len(blocks[0].strip().splitlines())
    assert reader_lines <= 22, f"the reader grew to {reader_lines} lines"

    data = f"{work}/mixed.csv"
    rng = np.random.RandomState(0)
    with open(data, "w") as f:  # numbers, a text column and a three-class text target
        f.write("id,a,b,color,kind\n")
        for i in range(60):
            a, b = rng.normal(), rng.normal()
            color = ["red", "green", "blue"][i % 3]
            kind = "x" if a + b > 0.5 else ("y" if a - b > 0 else "z")
            f.write(f"{i},{a:.6f},{b:.6f},{color},{kind}\n")
    cases = [
        (data, ["--drop", "id", "--dtype", "float64"], "classify"),
        (data, ["--drop", "id", "--layers", "8,4", "--activation", "relu"], "classify"),
        (f"{source}/examples/people.csv", ["--target", "gender", "--drop", "name", "--dtype", "float64"], "classify"),
        (data, ["--drop", "id,color,kind", "--target", "b", "--task", "regress"], "regress"),
    ]
    for path, flags, task in cases:
        model = f"{work}/m.safetensors"
        subprocess.run([binary, "train", path, "--quiet", "--epochs", "30", "--out", model] + flags, check=True)
        out = subprocess.run([binary, "predict", model, path], check=True, capture_output=True, text=True).stdout
        expected = list(csv.DictReader(out.splitlines()))
        tensors, meta = namespace["read_model"](model)
        body = open(model, "rb").read()
        n = int.from_bytes(body[:8], "little")
        header = json.loads(body[8:8 + n])
        checksum = header["__metadata__"].pop("checksum")
        canonical = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert checksum == "crc32:%08x" % zlib.crc32(canonical.encode() + body[8 + n:]), "checksum"
        rows = list(csv.DictReader(open(path)))
        got = namespace["predict"](tensors, meta, rows)
        prep = meta["preprocessing"]
        tolerance = 1e-9 if meta["architecture"]["dtype"] == "float64" else 2e-5
        for i, row in enumerate(expected):
            if task == "regress":
                value = got[i, 0] * prep["target_scale"] + prep["target_center"]
                assert abs(value - float(row[prep["target"]])) <= tolerance * max(1, abs(value)), (i, value, row)
                continue
            classes = prep["classes"]
            probs = [1 - got[i, 0], got[i, 0]] if len(classes) == 2 else list(got[i])
            for c, p in zip(classes, probs):
                # predict prints 6 significant digits
                assert abs(p - float(row["p_" + c])) <= 5e-6 * max(1e-3, abs(p)) + 1e-7, (i, c, p, row)
            assert row[prep["target"]] == classes[int(np.argmax(probs))], (i, row)
        # The "Into PyTorch" block loads the same file into torch.nn.Linear layers.
        import shutil
        import torch
        shutil.copy(model, os.path.join(work, "model.safetensors"))
        cwd = os.getcwd()
        os.chdir(work)
        try:
            exec(blocks[2], namespace)
        finally:
            os.chdir(cwd)
        x = torch.from_numpy(namespace["preprocess"](meta, rows))
        x = x.to(namespace["net"][0].weight.dtype)
        with torch.no_grad():
            torch_out = namespace["net"](x).double().numpy()
        assert np.allclose(torch_out, got, rtol=1e-5, atol=1e-6), np.abs(torch_out - got).max()
        print(f"ok: {os.path.basename(path)} {' '.join(flags)} ({len(expected)} rows, PyTorch too)")
    print(f"the reader is {reader_lines} lines")


if __name__ == "__main__":
    main(*sys.argv[1:])
