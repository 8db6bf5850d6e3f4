"""The documented install (docs/python.md): a virtual environment that sees Debian's packages, and
pip installing ./python into it with no build isolation and no network. The module is built in
this build tree (CHAINRULE_BUILD_DIR, python/setup.py) rather than compiled again from scratch;
the package is then imported from another directory by the environment's own python, with no
PYTHONPATH, and its ONNX export works."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import chainrule

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_pip_install_into_a_venv_then_import_from_anywhere(tmp_path):
    build = pathlib.Path(chainrule._core.__file__).resolve().parents[2]
    if not (build / "CMakeCache.txt").exists():
        pytest.skip("the module was not built in a CMake tree")
    source = tmp_path / "python"  # a copy: pip's in-tree build writes next to setup.py
    shutil.copytree(ROOT / "python", source, ignore=shutil.ignore_patterns("tests", "build",
                                                                            "*.egg-info"))
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(CHAINRULE_BUILD_DIR=str(build), PIP_NO_INDEX="1")
    subprocess.run([str(venv / "bin" / "pip"), "install", "--no-build-isolation", "--no-deps",
                    "--quiet", str(source)], check=True, env=env, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import chainrule, os, numpy as np\n"
        "print(chainrule.__file__)\n"
        "X = np.random.default_rng(0).normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)\n"
        "clf = chainrule.MLPClassifier(hidden_layer_sizes=(4,), max_iter=5).fit(X, y)\n"
        "clf.save('m.safetensors')\n"
        "print(chainrule.export_onnx(chainrule.load('m.safetensors').model_, 'm.onnx'))\n")
    out = subprocess.run([str(venv / "bin" / "python"), "-W", "ignore", "-c", script],
                         check=True, env=env, cwd=elsewhere, capture_output=True,
                         text=True).stdout.split()
    assert out[0].startswith(str(venv))  # the installed package, not the build tree's
    assert int(out[1]) == (elsewhere / "m.onnx").stat().st_size > 0
