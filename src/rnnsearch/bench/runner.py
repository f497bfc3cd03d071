"""`rnnsearch bench`: decoding speed of rnnsearch and, when torch is installed, of the PyTorch
reference on the same weights in the same run, decoded with the batched beam search a
PyTorch user writes (rnnsearch.bench.torch_search: the whole batch x beam as one tensor
batch, eager mode). `rnnsearch bench --compare ...` runs the peer
benchmark instead (rnnsearch vs ONNX Runtime vs PyTorch, rnnsearch.bench.peers) in a child
process whose NumPy BLAS runs on one thread; `rnnsearch bench --scaling ...` the cost over
source and target length (rnnsearch.bench.scaling).

Every case forces a fixed target length (min = max decoding length) so that every engine
does the same amount of work; results are medians over repeated runs, engines alternate
within each repetition so that machine drift hits both alike.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time

from ..cli_options import add_compute_type
from .floors import BLAS_THREAD_VARIABLES
from .sources import model_or_random, random_sources

CASES = {"b1-greedy": (1, 1), "b1-beam5": (1, 5), "b32-greedy": (32, 1), "b32-beam5": (32, 5)}
PEER_PACKAGES = ("torch", "onnx", "onnxruntime")


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", default=None, help="model directory (default: random)")
    p.add_argument("--size", default="small", choices=["small", "medium", "nmt"],
                   help="size of the random model when no -m is given (default small)")
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"comma-separated cases from {list(CASES)}")
    p.add_argument("--source-length", type=int, default=25, help="source tokens per sentence")
    p.add_argument("--target-length", type=int, default=30, help="target tokens per sentence")
    p.add_argument("--batch1-sentences", type=int, default=8,
                   help="sentences translated one by one in the batch-1 cases")
    p.add_argument("--repeat", type=int, default=3, help="repetitions (median reported)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    p.add_argument("--threads", type=int, default=1, help="threads for both engines")
    add_compute_type(p)
    p.add_argument("--compare", nargs=argparse.REMAINDER, default=None, metavar="OPTIONS",
                   help="run the peer benchmark instead: rnnsearch vs ONNX Runtime vs PyTorch "
                        "on one model exported to ONNX and converted (needs torch, onnx, "
                        "onnxruntime). Every argument after --compare is its own; see "
                        "'rnnsearch bench --compare --help'. It runs in a child process with "
                        "NumPy's BLAS on one thread, for the single-core sgemm floor")
    p.add_argument("--scaling", nargs=argparse.REMAINDER, default=None, metavar="OPTIONS",
                   help="run the cost-as-work-grows benchmark instead: rnnsearch's time over "
                        "source lengths 10/50/200/800 and target lengths, per-step cost "
                        "against source length. Every argument after --scaling is its own; "
                        "see 'rnnsearch bench --scaling --help'")


def time_rnnsearch(translator, sources, batch, beam, length):
    """Seconds to translate `sources` (ids) in batches at a forced target length."""
    tokens = [[translator.source_vocab.tokens[i] for i in s] for s in sources]
    start = time.perf_counter()
    for i in range(0, len(tokens), batch):
        translator.translate_batch(tokens[i:i + batch], beam_size=beam,
                                   min_decoding_length=length, max_decoding_length=length)
    return time.perf_counter() - start


def _time_torch(search, sources, batch, beam, length, threads):
    import numpy as np
    start = time.perf_counter()
    for i in range(0, len(sources), batch):
        search.translate(np.array(sources[i:i + batch]), beam, length, threads)
    return time.perf_counter() - start


def _load_reference(model_dir: str):
    """The PyTorch reference model with its batched beam search, or None without torch."""
    if importlib.util.find_spec("torch") is None:
        return None
    from ..reference import load_model_dir as load_torch_model
    from .torch_search import TorchBeamSearch
    model, bos, eos = load_torch_model(model_dir)
    return TorchBeamSearch(model, bos, eos)


def _run_compare(argv: list[str]) -> int:
    """The peer harness in a child process: NumPy's BLAS takes its thread count from the
    environment when it loads (in this process it has loaded already), and the sgemm floor
    must be one core's. The report comes back through this process's stdout, so that
    whoever captures that sees it; progress lines go straight to stderr."""
    missing = [name for name in PEER_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        print(f"rnnsearch bench --compare needs torch, onnx and onnxruntime: "
              f"{', '.join(missing)} not installed (pip install 'rnnsearch[torch,onnx]' "
              f"onnxruntime)", file=sys.stderr)
        return 1
    single_threaded = {variable: "1" for variable in BLAS_THREAD_VARIABLES}
    with subprocess.Popen([sys.executable, "-m", "rnnsearch.bench.peers", *argv],
                          env={**os.environ, **single_threaded}, stdout=subprocess.PIPE,
                          text=True) as harness:
        for line in harness.stdout:
            sys.stdout.write(line)
    return harness.returncode


def run_bench(args) -> int:
    if args.compare is not None:
        return _run_compare(args.compare)
    if args.scaling is not None:
        from .scaling import main as run_scaling
        return run_scaling(args.scaling)
    from .._engine import kernel_isa
    from ..translator import Translator

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise ValueError(f"unknown bench case(s) {unknown}; choose from {list(CASES)}")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, label = model_or_random(args.model, args.size, tmp)
        translator = Translator(model_dir, intra_threads=args.threads,
                                compute_type=args.compute_type)
        reference = None if args.no_torch else _load_reference(model_dir)
        vocab = len(translator.source_vocab)
        n_b32 = 32
        print(f"model: {label}")
        print(f"compute type {args.compute_type}, kernels: {kernel_isa(args.compute_type)}; "
              f"threads: {args.threads}; source length "
              f"{args.source_length}; target length {args.target_length}; "
              f"median of {args.repeat}")
        if reference is not None:
            print("torch: the PyTorch reference model (rnnsearch.reference) on the same "
                  "weights, batched beam search in eager mode, same batches and length; "
                  "x torch = torch time / rnnsearch time")
        header = f"{'case':<12} {'engine':<10} {'sent/s':>10} {'tokens/s':>11} {'x torch':>9}"
        print(header)
        print("-" * len(header))
        for case in cases:
            batch, beam = CASES[case]
            count = args.batch1_sentences if batch == 1 else n_b32
            sources = random_sources(vocab, count, args.source_length)
            times = {"rnnsearch": [], "torch": []}
            for _ in range(args.repeat):
                times["rnnsearch"].append(time_rnnsearch(translator, sources, batch, beam,
                                                          args.target_length))
                if reference is not None:
                    times["torch"].append(_time_torch(reference, sources, batch, beam,
                                                      args.target_length, args.threads))
            medians = {k: statistics.median(v) for k, v in times.items() if v}
            for engine, seconds in medians.items():
                ratio = ""
                if engine == "rnnsearch" and "torch" in medians:
                    ratio = f"{medians['torch'] / seconds:8.1f}x"
                print(f"{case:<12} {engine:<10} {count / seconds:10.1f} "
                      f"{count * args.target_length / seconds:11.1f} {ratio:>9}")
    return 0
