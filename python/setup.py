"""Builds chainrule's Python package: the pure-Python estimators (chainrule/) and the pybind11
module chainrule._core, compiled by CMake from the repository one level up (the library is
linked in statically). Everything comes from Debian packages (scripts/setup); no network:

    python3 -m venv --system-site-packages .venv
    .venv/bin/pip install --no-build-isolation ./python

CHAINRULE_BUILD_JOBS sets the compile jobs (default: the number of CPUs). CHAINRULE_BUILD_DIR
names a CMake build tree already configured with the Python module (such as the repository's
build/, which scripts/build configures): the module is built there instead of in a fresh tree
(python/tests/test_install.py installs the package that way).
"""

import os
import pathlib
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        given = os.environ.get("CHAINRULE_BUILD_DIR")
        if given:
            build = pathlib.Path(given).resolve()
        else:
            build = pathlib.Path(self.build_temp).resolve() / "cmake"
            subprocess.check_call([
                "cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                "-DCHAINRULE_BUILD_CLI=OFF", "-DCHAINRULE_BUILD_TESTS=OFF",
                "-DCHAINRULE_BUILD_PYTHON=ON", f"-DPython_EXECUTABLE={sys.executable}",
            ])
        jobs = os.environ.get("CHAINRULE_BUILD_JOBS", str(os.cpu_count() or 1))
        subprocess.check_call(
            ["cmake", "--build", str(build), "--target", "chainrule_python", "-j", jobs])
        built = next((build / "python" / "chainrule").glob("_core*.so"))
        dest = pathlib.Path(self.get_ext_fullpath(ext.name))
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, dest)


setup(
    name="chainrule",
    version="0.1.0",
    description="Multi-layer perceptrons trained by backpropagation on a C++ engine, "
    "with scikit-learn estimators",
    packages=["chainrule"],
    package_dir={"chainrule": str((HERE / "chainrule").relative_to(HERE))},
    ext_modules=[Extension("chainrule._core", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.9",
    install_requires=["numpy", "scikit-learn"],
    zip_safe=False,
)
