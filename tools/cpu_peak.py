"""What one core of this machine can do at most, for judging speed targets against the
hardware rather than against a library (rnnsearch.bench.floors measures libraries):

  float32 FMA peak   12 independent chains of AVX-512 (or AVX2) FMAs on registers only
  int8 VNNI peak     the same with vpdpbusd (AVX512-VNNI), if the CPU has it
  streaming read     the sum of a 512 MB array with 8 accumulators (a lower bound on what
                     one core can read; torch.sum may read faster)
  cached read        the same over 256 KB read 20,000 times: what one core reads from L2
                     (a matrix-vector product's weights come at most this fast)
  cyclic read        the same over 1.5 x the L3 cache read five times: whether weights a
                     little larger than L3, read in the same order every step, keep any of it
                     (near the streaming rate: they do not)

The loops are C, compiled here with the system's `cc` (-O2, -march=native) in a temporary
directory; each is run --repeat times and the best is printed, since other tenants of a
shared machine only ever make a run slower.

    python tools/cpu_peak.py [--repeat 5]

Used by the closing notes to show which speed targets no implementation can reach: e.g.
a case whose matrix products alone need more time at the FMA peak than a target allows.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from rnnsearch.bench.floors import last_level_cache_bytes

SOURCE = r"""
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#if defined(__AVX512F__)
typedef __m512 vf;
#define LANES 16
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define SET(x) _mm512_set1_ps(x)
#define LOAD(p) _mm512_load_ps(p)
#define ADD(a, b) _mm512_add_ps(a, b)
#define STORE(p, v) _mm512_storeu_ps(p, v)
#else
typedef __m256 vf;
#define LANES 8
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define SET(x) _mm256_set1_ps(x)
#define LOAD(p) _mm256_load_ps(p)
#define ADD(a, b) _mm256_add_ps(a, b)
#define STORE(p, v) _mm256_storeu_ps(p, v)
#endif

static float sum_lanes(vf v) {
    float lanes[LANES], s = 0.0f;
    STORE(lanes, v);
    for (int i = 0; i < LANES; i++) s += lanes[i];
    return s;
}

static double fma_peak(long rounds) {
    vf a[12], b = SET(0.999f), c = SET(0.001f);
    for (int i = 0; i < 12; i++) a[i] = SET((float)i);
    double t = now();
    for (long k = 0; k < rounds; k++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = FMA(a[i], b, c);   /* a[] stays in registers */
    }
    t = now() - t;
    float s = 0.0f;
    for (int i = 0; i < 12; i++) s += sum_lanes(a[i]);
    if (s == 12345.0f) puts("");   /* keep the chains alive */
    return rounds * 12.0 * LANES / t;
}

static double vnni_peak(long rounds) {
#if defined(__AVX512VNNI__)
    __m512i a[12], b = _mm512_set1_epi8(1), c = _mm512_set1_epi8(2);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_epi32(i);
    double t = now();
    for (long k = 0; k < rounds; k++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm512_dpbusd_epi32(a[i], b, c);
    }
    t = now() - t;
    long s = 0;
    for (int i = 0; i < 12; i++) s += _mm512_reduce_add_epi32(a[i]);
    if (s == 12345) puts("");
    return rounds * 12.0 * 64 / t;
#else
    (void)rounds;
    return 0.0;
#endif
}

/* bytes/s of summing an array of `bytes`, `passes` times over (one untimed pass first,
   so an array that fits a cache is read from it) */
static double read_rate(size_t bytes, int passes) {
    size_t n = bytes / sizeof(float);
    float *a = aligned_alloc(64, n * sizeof(float));
    if (!a) return 0.0;
    for (size_t i = 0; i < n; i++) a[i] = 1.0f;
    vf s[8];
    for (int i = 0; i < 8; i++) s[i] = SET(0.0f);
    double t = 0.0;
    for (int pass = -1; pass < passes; pass++) {
        if (pass == 0) t = now();
        for (size_t i = 0; i + 8 * LANES <= n; i += 8 * LANES) {
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) s[k] = ADD(s[k], LOAD(a + i + k * LANES));
        }
    }
    t = now() - t;
    float total = 0.0f;
    for (int k = 0; k < 8; k++) total += sum_lanes(s[k]);
    if (total == 1.0f) puts("");
    free(a);
    return (double)bytes * passes / t;
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "fma";
    if (!strcmp(what, "fma")) printf("%.6g\n", fma_peak(200000000L));
    else if (!strcmp(what, "vnni")) printf("%.6g\n", vnni_peak(200000000L));
    else if (!strcmp(what, "l2")) printf("%.6g\n", read_rate((size_t)256 << 10, 20000));
    else if (!strcmp(what, "cyclic") && argc > 2)
        printf("%.6g\n", read_rate((size_t)strtoull(argv[2], NULL, 10), 5));
    else printf("%.6g\n", read_rate((size_t)512 << 20, 1));
    return 0;
}
"""


def build(directory: str) -> str:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise SystemExit("needs a C compiler (cc, gcc or clang)")
    source, binary = os.path.join(directory, "peak.c"), os.path.join(directory, "peak")
    with open(source, "w") as f:
        f.write(SOURCE)
    subprocess.run([compiler, "-O2", "-march=native", source, "-o", binary], check=True)
    return binary


def best(binary: str, what: str, repeat: int, *arguments: str) -> float:
    return max(float(subprocess.run([binary, what, *arguments], check=True,
                                    capture_output=True, text=True).stdout)
               for _ in range(repeat))


def measure(repeat: int = 5) -> dict[str, float]:
    """{"fma": multiply-adds/s, "vnni": int8 multiply-adds/s (0 without VNNI), "read":
    streaming bytes/s, "l2": cached bytes/s, "cyclic": bytes/s of reading 1.5 x the L3
    cache five times over}, each the best of `repeat` runs."""
    cyclic_bytes = 3 * last_level_cache_bytes() // 2
    with tempfile.TemporaryDirectory(prefix="cpu-peak-") as directory:
        binary = build(directory)
        peak = {what: best(binary, what, repeat) for what in ("fma", "vnni", "read", "l2")}
        peak["cyclic"] = best(binary, "cyclic", repeat, str(cyclic_bytes))
    return peak


def describe(peak: dict[str, float]) -> str:
    """The line the benchmarks print above their floors."""
    return (f"one core: FMA peak {peak['fma'] / 1e9:.1f} G multiply-adds/s, streaming read "
            f"{peak['read'] / 1e9:.1f} GB/s, L3 {last_level_cache_bytes() / 2 ** 20:.0f} MiB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    peak = measure(args.repeat)
    print(f"one core, best of {args.repeat} (python tools/cpu_peak.py --repeat {args.repeat}):")
    print(f"- float32 FMA peak: {peak['fma'] / 1e9:.1f} G multiply-adds/s = "
          f"{2 * peak['fma'] / 1e9:.1f} GFLOP/s")
    print("- int8 VNNI peak: " + (f"{peak['vnni'] / 1e9:.1f} G multiply-adds/s"
                                  if peak["vnni"] else "no AVX512-VNNI on this CPU"))
    print(f"- streaming read (8 accumulators, 512 MB): {peak['read'] / 1e9:.1f} GB/s")
    print(f"- cached read (the same over 256 KB, which L2 holds): {peak['l2'] / 1e9:.1f} GB/s")
    print(f"- cyclic read (the same over {1.5 * last_level_cache_bytes() / 2 ** 20:.0f} MB, 1.5 "
          f"x the L3, five times): {peak['cyclic'] / 1e9:.1f} GB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
