"""Builds the compiled engine (engine/*.c and the Cython wrapper) into rnnsearch._engine."""
import glob
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

# -ffp-contract=off: the same arithmetic in every code path, so a row's result never
# depends on which kernel variant or row block computed it.
compile_args = ["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno", "-pthread"]
if sys.platform == "win32":
    compile_args = ["/O2"]

engine = Extension(
    "rnnsearch._engine",
    sources=["engine/_engine.pyx"] + sorted(glob.glob("engine/rs_*.c")),
    include_dirs=["engine", numpy.get_include()],
    extra_compile_args=compile_args,
    libraries=["m"] if sys.platform != "win32" else [],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
)

setup(ext_modules=cythonize([engine], compiler_directives={"language_level": 3}))
