"""Shared fixtures: the command line beside the module (CHAINRULE_CLI, set by ctest), for the
tests that check the Python side against it."""
import os
import pathlib
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _cli():
    path = os.environ.get("CHAINRULE_CLI")
    if path and pathlib.Path(path).exists():
        return path
    for build in ("build-py", "build"):
        candidate = ROOT / build / "chainrule"
        if candidate.exists():
            return str(candidate)
    return shutil.which("chainrule")


@pytest.fixture(scope="session")
def cli():
    path = _cli()
    if path is None:
        pytest.skip("no chainrule command line (set CHAINRULE_CLI)")
    return path


@pytest.fixture(scope="session")
def root():
    return ROOT
