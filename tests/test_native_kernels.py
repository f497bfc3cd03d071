"""The engine's kernels built as a plain C program (tests/native/kernel_check.c): natively
for every x86 instruction set this CPU has, and for AArch64 with a cross compiler, run
under qemu-aarch64 as CPUs with and without the DotProd extension.

Each run checks its kernels against a plain reference (float products with a double sum,
int8 products bit for bit with the exact integer product, exp/tanh/sigmoid/log-softmax with
the C library) and prints a digest of every family's outputs. The determinism contract
across instruction sets (docs/architecture.md, "Determinism"): the SIMD kernels (AVX2,
AVX-512, NEON) give the same bits as each other, the portable C kernels give the same bits
on every CPU, and int8 gives the same bits everywhere.

CI (.ci/run) installs the cross compiler and qemu and sets RNNSEARCH_REQUIRE_QEMU=1, so
there the AArch64 half fails instead of skipping when they are missing."""
from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"
HARNESS = Path(__file__).resolve().parent / "native" / "kernel_check.c"
CROSS_CC = "aarch64-linux-gnu-gcc"
QEMU = "qemu-aarch64"
FAMILIES = ("fp32", "fp32-portable", "int8", "bf16", "exp", "tanh", "sigmoid", "log_softmax",
            "context", "lstm")
SIMD_FAMILIES = ("fp32", "exp", "tanh", "sigmoid", "log_softmax", "lstm")

# qemu CPU models -> the int8 kernel the engine must choose on them
ARM_CPUS = {"cortex-a53": "neon", "cortex-a72": "neon", "neoverse-n1": "neon-dotprod",
            "max": "neon-dotprod"}

if not (ENGINE / "rs_kernels.c").is_file():
    pytest.skip("the engine's C sources are not here (tests run against an installed "
                "wheel)", allow_module_level=True)


def _flags() -> list[str]:
    return runpy.run_path(str(ENGINE / "compile_flags.py"))["UNIX"] + ["-Wall", f"-I{ENGINE}"]


def _compile(compiler: str, output: Path, extra=()) -> None:
    """The harness with the kernels' files (matrix products and their split over worker
    threads, element-wise functions, the platform layer, the per-thread memory that holds
    the int8/bfloat16 kernels' scratch), with the engine's own flags."""
    kernels = [p for pattern in ("rs_kernels.c", "rs_gemm*.c", "rs_vmath*.c", "rs_platform.c",
                                 "rs_split.c", "rs_workers.c", "rs_thread_memory.c",
                                 "rs_context.c")
               for p in sorted(ENGINE.glob(pattern))]
    done = subprocess.run([compiler, *_flags(), str(HARNESS), *map(str, kernels), "-lm", *extra,
                           "-o", str(output)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _run(command: list[str], **env) -> tuple[str, dict[str, str], str]:
    """(isa line, {family: digest}, whole output); asserts that every check passed."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    digests = {line.split()[1]: line.split()[2] for line in lines if line.startswith("digest ")}
    assert set(digests) == set(FAMILIES), done.stdout
    return lines[0], digests, done.stdout


def _host_compiler() -> str | None:
    for name in ((sysconfig.get_config_var("CC") or "").split()[:1] + ["cc", "gcc", "clang"]):
        if shutil.which(name):
            return name
    return None


@pytest.fixture(scope="module")
def native_runs(tmp_path_factory):
    """{RNNSEARCH_ISA value: (isa line, digests)} on this machine."""
    compiler = _host_compiler()
    if compiler is None:
        pytest.skip("no C compiler")
    binary = tmp_path_factory.mktemp("native") / "kernel_check"
    _compile(compiler, binary)
    runs = {}
    # "" = the engine's own choice; avx512-nobf16: the bfloat16 kernel without vdpbf16ps
    for isa in ("portable", "avx2", "avx512-nobf16", ""):
        line, digests, output = _run([str(binary)], RNNSEARCH_ISA=isa)
        forced = {"portable": "portable", "avx2": "avx2" if "fp32=avx2" in line else None,
                  "avx512-nobf16": "avx512" if "fp32=avx512" in line else None}.get(isa)
        assert forced is None or output.splitlines()[1] == f"bf16 {forced}", output
        runs[isa] = (line, digests)
    return runs


@pytest.fixture(scope="module")
def arm_binary(tmp_path_factory):
    missing = [tool for tool in (CROSS_CC, QEMU) if shutil.which(tool) is None]
    if missing:
        message = (f"{' and '.join(missing)} not installed: the AArch64 NEON kernels are "
                   "checked under qemu (apt-get install qemu-user gcc-aarch64-linux-gnu)")
        if os.environ.get("RNNSEARCH_REQUIRE_QEMU"):
            pytest.fail(message)
        pytest.skip(message)
    binary = tmp_path_factory.mktemp("aarch64") / "kernel_check"
    _compile(CROSS_CC, binary, extra=["-static"])
    return binary


def test_the_whole_engine_compiles_for_aarch64(arm_binary):
    sources = sorted(str(p) for p in ENGINE.glob("rs_*.c"))
    done = subprocess.run([CROSS_CC, *_flags(), "-fsyntax-only", *sources],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_native_kernels_match_the_reference_on_every_instruction_set(native_runs):
    simd = {isa: digests for isa, (line, digests) in native_runs.items()
            if "fp32=portable" not in line}
    # int8 is exact: every kernel gives the same bits; so does bfloat16 (its products are
    # exact in float32, summed in one documented order)
    assert len({digests["int8"] for _, digests in native_runs.values()}) == 1
    assert len({digests["bf16"] for _, digests in native_runs.values()}) == 1
    # attention contexts are the plain loop's bits (checked in the harness) everywhere
    assert len({digests["context"] for _, digests in native_runs.values()}) == 1
    # the SIMD kernels (AVX2 and AVX-512 here) agree bit for bit
    for family in SIMD_FAMILIES:
        assert len({digests[family] for digests in simd.values()}) <= 1, family


def test_neon_kernels_under_qemu(arm_binary, native_runs):
    runs = {}
    for cpu, int8_isa in ARM_CPUS.items():
        line, digests, output = _run([QEMU, "-cpu", cpu, str(arm_binary)])
        # the instruction set is chosen at run time: sdot only where the CPU has it (qemu
        # raises SIGILL on sdot for a cortex-a53 or -a72, so these runs prove it is avoided)
        assert line == f"isa fp32=neon int8={int8_isa}", (cpu, output)
        assert output.splitlines()[1] == "bf16 neon", (cpu, output)
        runs[cpu] = digests
    line, neon_only, _ = _run([QEMU, "-cpu", "max", str(arm_binary)], RNNSEARCH_ISA="neon")
    assert line == "isa fp32=neon int8=neon"
    runs["max, RNNSEARCH_ISA=neon"] = neon_only
    line, arm_portable, _ = _run([QEMU, "-cpu", "max", str(arm_binary)],
                                 RNNSEARCH_ISA="portable")
    assert line == "isa fp32=portable int8=portable"

    first = next(iter(runs.values()))
    for cpu, digests in runs.items():   # dotprod or not, the same bits
        assert digests == first, cpu
    # int8 and bfloat16: the same bits as every x86 kernel
    assert first["int8"] == arm_portable["int8"] == native_runs["portable"][1]["int8"]
    assert first["bf16"] == arm_portable["bf16"] == native_runs["portable"][1]["bf16"]
    assert first["context"] == arm_portable["context"] == native_runs["portable"][1]["context"]
    # portable C: the same bits on AArch64 as on x86 (no fused multiply-adds anywhere)
    assert arm_portable == native_runs["portable"][1]
    # NEON: the same bits as AVX2 and AVX-512
    x86_simd = [digests for line, digests in native_runs.values() if "fp32=portable" not in line]
    if not x86_simd:
        pytest.skip("this machine has no x86 SIMD kernels to compare NEON with")
    for family in SIMD_FAMILIES:
        assert first[family] == x86_simd[0][family], family


def test_windows_build_under_wine(tmp_path, native_runs):
    """The Windows side of rs_platform.c (InitOnce, fiber-local storage, CreateThread,
    _aligned_malloc), built with MinGW-w64 and run under Wine. Optional: .ci/run does not
    install them (about 600 MB); the Windows wheels' own builds and tests (cibuildwheel,
    pyproject.toml) cover MSVC."""
    mingw, wine = "x86_64-w64-mingw32-gcc", "wine"
    missing = [tool for tool in (mingw, wine) if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (apt-get install "
                    "gcc-mingw-w64-x86-64 wine64)")
    binary = tmp_path / "kernel_check.exe"
    _compile(mingw, binary)
    line, digests, _ = _run([wine, str(binary)], WINEDEBUG="-all")
    assert (line, digests) == native_runs[""]
