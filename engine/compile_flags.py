"""The engine's C compiler flags: read by setup.py for the extension, and by
tests/test_native_kernels.py, which builds the kernels for AArch64 with a cross compiler.

-ffp-contract=off: the compiler never fuses a multiply and an add on its own, so plain C
gives the same bits on every CPU and compiler, and a row's result never depends on which
kernel variant or row block computed it (the SIMD kernels fuse explicitly, all in the same
places: docs/architecture.md, "Determinism"). -fno-math-errno: no errno to keep, so math
calls can be inlined. Release build: optimised, no debug information (-g0 overrides the
-g that Python's own compiler flags carry).
"""
DETERMINISM = ["-ffp-contract=off", "-fno-math-errno"]

# GCC and clang (Linux, macOS, musl)
UNIX = ["-O3", "-std=gnu11", *DETERMINISM, "-pthread", "-g0"]

# MSVC (Windows): /fp:precise never contracts into fused multiply-adds without /arch:AVX2
# (and from Visual Studio 2022 on, not without /fp:contract either); no debug information
# unless /Zi is given.
MSVC = ["/O2", "/fp:precise", "/std:c11"]
