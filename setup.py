"""Builds the compiled engine (engine/*.c and the Cython wrapper) into rnnsearch._engine, and
installs the repository's models/ directory as the package rnnsearch.models."""
import glob
import os
import runpy
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
FLAGS = runpy.run_path(os.path.join(HERE, "engine", "compile_flags.py"))

engine = Extension(
    "rnnsearch._engine",
    sources=["engine/_engine.pyx"] + sorted(glob.glob("engine/rs_*.c")),
    include_dirs=["engine", numpy.get_include()],
    extra_compile_args=FLAGS["MSVC"] if sys.platform == "win32" else FLAGS["UNIX"],
    libraries=["m"] if sys.platform != "win32" else [],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
)

setup(
    # The shipped models live at the top of the repository, not in src/, and install inside
    # the package (as rnnsearch.models), where Translator() looks for the default one.
    packages=find_packages("src") + ["rnnsearch.models"],
    package_dir={"": "src", "rnnsearch.models": "models"},
    package_data={"rnnsearch.models": ["*/*"]},
    exclude_package_data={"rnnsearch.models": ["__pycache__/*"]},
    ext_modules=cythonize([engine], compiler_directives={"language_level": 3}),
)
