"""Load time and peak memory of a model directory (issue 4's memory targets).

    python tools/bench_memory.py [--size nmt|medium|small] [--model DIR] [--compute-type ...]

Writes a random model of the named size (or uses --model), then, in a fresh process per
measurement (so page caches and allocator state of one do not flatter the next): the time
`Translator(...)` takes to load it, and the peak resident memory after translating a batch
of 32 sentences with beam 5, as a multiple of the weights file. The file is read once
beforehand so the load time measures the engine, not the disk.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

# VmHWM, not getrusage: ru_maxrss survives exec, so it would report the parent's peak
_MEASURE = r"""
import sys, time
import numpy as np
import rnnsearch
path, compute_type = sys.argv[1:3]
start = time.perf_counter()
translator = rnnsearch.Translator(path, compute_type=compute_type)
load = time.perf_counter() - start
vocab = translator.source_vocab.tokens[4:]
rng = np.random.default_rng(0)
sources = [[vocab[i] for i in rng.integers(0, len(vocab), 25)] for _ in range(32)]
translator.translate_batch(sources, beam_size=5, max_decoding_length=30)
status = open("/proc/self/status").read()
peak = int(status.split("VmHWM:")[1].split()[0]) * 1024
print(load, peak)
"""


def measure(path: str, compute_type: str) -> tuple[float, int]:
    with open(os.path.join(path, "model.safetensors"), "rb") as f:   # warm the page cache
        while f.read(1 << 24):
            pass
    done = subprocess.run([sys.executable, "-c", _MEASURE, path, compute_type],
                          capture_output=True, text=True, check=True)
    load, peak = done.stdout.split()
    return float(load), int(peak)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="nmt", choices=("small", "medium", "nmt"))
    ap.add_argument("--model", help="an existing model directory instead of a random one")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.model
        if path is None:
            from rnnsearch.random_model import sized_config, write_random_model
            config, vs, vt = sized_config(args.size)
            path = os.path.join(tmp, "float32")
            write_random_model(path, config, vs, vt)
        from rnnsearch.quantize import quantize_model_dir
        quantized = os.path.join(tmp, "int8-file")
        quantize_model_dir(path, quantized)
        print("| model file | compute | weights file | load | peak RSS | RSS / file |")
        print("|---|---|---|---|---|---|")
        for label, directory, compute_type in (("float32", path, "float32"),
                                               ("float32", path, "int8"),
                                               ("int8 (--quantize)", quantized, "int8")):
            size = os.path.getsize(os.path.join(directory, "model.safetensors"))
            load, peak = measure(directory, compute_type)
            print(f"| {label} | {compute_type} | {size / 1e6:.0f} MB | {load * 1000:.0f} ms | "
                  f"{peak / 1e6:.0f} MB | {peak / size:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
