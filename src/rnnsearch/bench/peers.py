"""`rnnsearch bench --compare`: rnnsearch against what a user would otherwise deploy, each
tuned as its documentation advises, on the same model in one process:

- float32: ONNX Runtime (decoder step graph with an in-graph TopK head), PyTorch eager,
  PyTorch with oneDNN-prepacked weights (rnnsearch.bench.torch_tuned) and, with
  --torch-compile, PyTorch's decoder step through torch.compile with freezing;
- int8: rnnsearch int8 against ONNX Runtime `quantize_dynamic` and PyTorch
  `quantize_dynamic` (int8 weights, activations quantized per call, as rnnsearch int8);
- bfloat16: rnnsearch bfloat16 against PyTorch's CPU mixed precision (the decoder cells
  as nn.Linear, under torch.autocast("cpu", dtype=torch.bfloat16): oneDNN's bfloat16
  products) and against rnnsearch fp32.

    rnnsearch bench --compare             # small and nmt sizes, ~15 minutes on 2 quiet cores
    rnnsearch bench --compare --quick     # a smoke run, about a minute
    rnnsearch bench --compare --size nmt --repeat 7 --threads 1,2,4 --json out.json

Per model size:
1. a random model is built with the PyTorch reference (`rnnsearch.reference`), exported
   to ONNX as an encoder graph and a one-step decoder graph (`torch.onnx.export`,
   dynamo=False) and converted to an rnnsearch model directory by the project's own ONNX
   converter (if that fails, `export_model_dir` writes it instead and the report says so);
2. identity check: greedy and beam-5 tokens of every float32 engine must equal rnnsearch
   fp32's (a mismatch is an error exit unless --no-check); the int8 engines' agreement
   with rnnsearch fp32 is reported;
3. timing (rnnsearch.bench.timing): every shape warmed up, then `--repeat` repetitions with
   the engines in a rotated order; wall time and process CPU time per sentence;
4. floors: single-core memory bandwidth and sgemm rate, measured here, against the
   decoder weight bytes a batch-1 step must read and the FLOPs of a batched beam search.

Every engine decodes exactly `--target-length` tokens per sentence: EOS is banned until
then (rnnsearch: min = max decoding length), so all do the same work. The peers run the
beam search a user would write: all sentences x beam as rows of one batch, one decoder
call per step, top-k (PyTorch: torch.topk over beam x vocabulary; ONNX Runtime: TopK per
row in the graph, then the best of beam x beam), states reordered by row index.

NumPy's BLAS must use one thread for the sgemm floor, and it reads its thread count from
the environment when NumPy loads: `rnnsearch bench --compare` therefore runs this module in
a child process (`python -m rnnsearch.bench.peers`) with OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS and MKL_NUM_THREADS set to 1. Run any other way without them, only
PyTorch's sgemm (pinned to one thread at run time) is measured.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np
import onnx  # noqa: F401  (here so that a missing package fails at import, not midway)
import onnxruntime as ort
import torch

from ..errors import ModelError
from ..random_model import vocabularies
from ..reference import export_model_dir, random_model
from .floors import (beam_search_flops, decoder_step_bytes, measure_bandwidth, measure_sgemm,
                     numpy_blas_single_threaded)
from .onnx_graphs import OnnxGraphs, export_onnx, quantized, with_top_k
from .ort_search import OrtBeamSearch, top_k  # noqa: F401  (top_k: tested from here)
from .peer_report import (BEAM, BF16_ENGINES, FP32_ENGINES, INT8_ENGINES, SizeResult,
                          print_size, to_json)
from .sources import random_sources
from .timing import Case, time_case
from .torch_search import TorchBeamSearch
from .torch_tuned import compiled_frozen, dynamic_int8, linearized, prepacked_onednn

ENGINES = FP32_ENGINES + INT8_ENGINES + BF16_ENGINES


# ------------------------------------------------------------------------------ sizes

@dataclass(frozen=True)
class Size:
    name: str
    config: dict          # the architecture sections of config.json
    source_vocab: int
    target_vocab: int
    source_length: int


def small_size(vocab: int | None, hidden: int | None, source_length: int | None) -> Size:
    """The G2P model's shape: biGRU encoder, dense bridge, Bahdanau GRU decoder, additive
    attention, maxout readout."""
    H = hidden or 256
    config = {
        "encoder": {"embedding_size": 64, "cell": "gru", "hidden_size": H, "num_layers": 1,
                    "bidirectional": True},
        "bridge": {"type": "dense", "activation": "tanh"},
        "attention": {"score": "additive", "size": H},
        "decoder": {"type": "bahdanau", "embedding_size": 64, "cell": "gru", "hidden_size": H,
                    "readout": "maxout", "readout_size": 2 * H},
    }
    return Size("small", config, vocab or 31, vocab or 73, source_length or 8)


def nmt_size(vocab: int | None, hidden: int | None, source_length: int | None) -> Size:
    """An OpenNMT-py-like NMT model: 2-layer biLSTM encoder, 2-layer Luong LSTM decoder
    with input feeding, general attention and attentional layer. The `last` bridge hands
    each decoder layer its encoder layer's concatenated final states, so the encoder runs
    H/2 per direction."""
    H = hidden or 1024
    if H % 2:
        raise ValueError("the nmt size needs an even --hidden (H/2 per encoder direction)")
    config = {
        "encoder": {"embedding_size": 512, "cell": "lstm", "hidden_size": H // 2,
                    "num_layers": 2, "bidirectional": True},
        "bridge": {"type": "last", "lstm_cell": "bridged"},
        "attention": {"score": "general"},
        "decoder": {"type": "luong", "embedding_size": 512, "cell": "lstm", "hidden_size": H,
                    "num_layers": 2, "input_feeding": True, "attentional_layer": True},
    }
    return Size("nmt", config, vocab or 32000, vocab or 32000, source_length or 25)


def rnnsearch_model_dir(model, graphs: OnnxGraphs, size: Size, directory: str
                        ) -> tuple[str, str | None]:
    """Convert the ONNX graphs with rnnsearch's converter -> (model directory, None); if the
    converter refuses them, export the torch model directly -> (directory, the reason)."""
    from ..convert.onnx import convert_onnx
    source_vocab, target_vocab = vocabularies(size.source_vocab, size.target_vocab)
    path = os.path.join(directory, "converted")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # log(0) in the probe's softmax
            warnings.simplefilter("ignore", UserWarning)  # "tokenization is a guess": ids only
            convert_onnx(graphs.encoder, graphs.decoder, path, source_vocab=source_vocab,
                         target_vocab=target_vocab)
        return path, None
    except ModelError as error:
        path = os.path.join(directory, "exported")
        export_model_dir(model, path, source_vocab, target_vocab)
        return path, str(error)


# ------------------------------------------------------------------------ engines
# Each engine: translate(sources [N, S] int64, beam_size, length, threads) -> the best
# hypothesis of every sentence as a list of target ids.

class RnnsearchEngine:
    """rnnsearch.Translator (one per thread count) through the public translate_batch."""

    def __init__(self, model_dir: str, compute_type: str):
        self.model_dir, self.compute_type = model_dir, compute_type
        self.name = "rnnsearch " + {"float32": "fp32"}.get(compute_type, compute_type)
        self._translators = {}

    def translator(self, threads: int = 1):
        from ..translator import Translator
        if threads not in self._translators:
            self._translators[threads] = Translator(self.model_dir, intra_threads=threads,
                                                    compute_type=self.compute_type)
        return self._translators[threads]

    def translate(self, sources: np.ndarray, beam_size: int, length: int, threads: int):
        translator = self.translator(threads)
        words = translator.source_vocab.tokens
        results = translator.translate_batch([[words[i] for i in s] for s in sources],
                                             beam_size=beam_size, min_decoding_length=length,
                                             max_decoding_length=length)
        ids = translator.target_vocab.ids
        return [[ids[t] for t in r.hypotheses[0]] for r in results]


# ---------------------------------------------------------------------- agreement

def agreement(reference, engines, sentences: np.ndarray, length: int
              ) -> dict[str, dict[str, float]]:
    """Greedy and beam search on every engine (1 thread) against `reference`'s tokens: per
    engine the share of identical sentences (greedy, beam), and for greedy the share of
    equal positions and the mean length of the common prefix (after a first difference two
    engines decode different prefixes, so later positions say little)."""
    expected = {beam: np.array(reference.translate(sentences, beam, length, 1))
                for beam in (1, BEAM)}
    result = {}
    for engine in engines:
        greedy = np.array(engine.translate(sentences, 1, length, 1)) == expected[1]
        beam = np.array(engine.translate(sentences, BEAM, length, 1)) == expected[BEAM]
        prefix = np.where(greedy.all(axis=1), length, np.argmin(greedy, axis=1))
        result[engine.name] = {
            "greedy_sentences": float(greedy.all(axis=1).mean()),
            "greedy_positions": float(greedy.mean()),
            "greedy_common_prefix": float(prefix.mean()),
            "beam_sentences": float(beam.all(axis=1).mean())}
    return result


def identity_problems(agreed: dict[str, dict[str, float]], fp32_engines, count: int
                      ) -> list[str]:
    """Every float32 engine must give rnnsearch fp32's tokens."""
    return [f"{name} differs from rnnsearch fp32 (greedy {agreed[name]['greedy_sentences']:.0%},"
            f" beam {BEAM} {agreed[name]['beam_sentences']:.0%} of {count} sentences identical)"
            for name in fp32_engines
            if min(agreed[name]["greedy_sentences"], agreed[name]["beam_sentences"]) < 1]


# ------------------------------------------------------------------------- timing

def cases(batch: int, thread_counts: list[int]) -> list[Case]:
    """Batch 1 greedy and beam, batch beam at 1 thread, then the same at more threads."""
    return [Case(1, 1, 1), Case(1, BEAM, 1)] + [Case(batch, BEAM, t) for t in thread_counts]


def size_floors(tensors: dict, timings, size: Size, batch: int, length: int,
                machine: dict) -> dict:
    """Bandwidth floor of a batch-1 greedy step and sgemm floor of the batch beam search,
    and the fraction of each that rnnsearch fp32 achieves (1 thread)."""
    measured = {(c.batch, c.beam, c.threads): t["rnnsearch fp32"].median for c, t in timings}
    step_bytes = decoder_step_bytes(tensors)
    step_floor_ms = 1000.0 * step_bytes / machine["bandwidth"]["best"]
    step_ms = measured[(1, 1, 1)] / length
    flops = beam_search_flops(tensors, size.source_length, batch, BEAM, length)
    beam_floor_ms = 1000.0 * flops / machine["sgemm"]["best"]
    beam_ms = measured[(batch, BEAM, 1)] * batch
    return {"decoder_step_bytes": step_bytes, "step_floor_ms": step_floor_ms,
            "step_ms": step_ms, "step_fraction": step_floor_ms / step_ms,
            "beam_flops": flops, "beam_floor_ms": beam_floor_ms, "beam_ms": beam_ms,
            "beam_fraction": beam_floor_ms / beam_ms}


# --------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rnnsearch bench --compare",
        description="rnnsearch vs ONNX Runtime vs PyTorch (eager, oneDNN-prepacked, dynamic "
                    "int8) on one model (exported to ONNX and converted by rnnsearch's ONNX "
                    "converter): identity check, timings, and the memory-bandwidth and sgemm "
                    "floors.")
    p.add_argument("--size", choices=["small", "nmt", "both"], default="both",
                   help="model size(s) to run (default both)")
    p.add_argument("--repeat", type=int, default=None, help="repetitions (default 5; quick 2)")
    p.add_argument("--threads", default=None,
                   help="thread counts of the batch beam case: a list such as '1,2,4', or N "
                        "for '1,N' (default '1,2', quick '1'; 1 is always run)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run (well under a minute): 2 sentences for batch-1 cases, "
                        "batch 4, 2 repetitions, nmt vocabulary 8000, 1 thread unless "
                        "--threads is given")
    p.add_argument("--source-length", type=int, default=None,
                   help="source tokens per sentence (default: small 8, nmt 25)")
    p.add_argument("--target-length", type=int, default=30,
                   help="target tokens every engine decodes per sentence")
    p.add_argument("--vocab", type=int, default=None,
                   help="source and target vocabulary (default: small 31/73, nmt 32000)")
    p.add_argument("--hidden", type=int, default=None,
                   help="decoder hidden size (default: small 256, nmt 1024; the other widths "
                        "follow)")
    p.add_argument("--sentences", type=int, default=None,
                   help="sentences of the batch-1 cases, one call each (default 4)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="sentences in one call in the batch cases (default 32)")
    p.add_argument("--torch-compile", action="store_true",
                   help="add 'PyTorch compiled': the decoder step through torch.compile "
                        "(inductor, freezing), compiled once per shape in the warm-up "
                        "(minutes per shape on a busy machine)")
    p.add_argument("--no-int8", action="store_true",
                   help="leave out the int8 engines (rnnsearch int8, ONNX Runtime int8, "
                        "PyTorch dynamic int8)")
    p.add_argument("--no-bf16", action="store_true",
                   help="leave out the bfloat16 engines (rnnsearch bfloat16, PyTorch bf16 "
                        "autocast)")
    p.add_argument("--no-check", action="store_true",
                   help="report an identity-check mismatch without failing")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the results here")
    return p


def resolve_defaults(args, argv: list[str]) -> None:
    quick = args.quick
    args.command = " ".join(["rnnsearch bench --compare", *argv])
    args.repeat = args.repeat or (2 if quick else 5)
    args.sentences = args.sentences or (2 if quick else 4)
    args.batch_size = args.batch_size or (4 if quick else 32)
    args.nmt_vocab = args.vocab or (8000 if quick else None)
    spec = args.threads or ("1" if quick else str(min(2, os.cpu_count() or 1)))
    # one thread always: the floors and the batch-1 cases are single-threaded
    args.thread_counts = sorted({1, *(int(t) for t in spec.split(","))})
    if min(args.repeat, args.sentences, args.batch_size, args.target_length,
           *args.thread_counts) < 1:
        raise ValueError("--repeat, --sentences, --batch-size, --target-length and --threads "
                         "must be positive")


def selected_sizes(args) -> list[Size]:
    sizes = []
    if args.size in ("small", "both"):
        sizes.append(small_size(args.vocab, args.hidden, args.source_length))
    if args.size in ("nmt", "both"):
        sizes.append(nmt_size(args.nmt_vocab, args.hidden, args.source_length))
    return sizes


def progress(message: str) -> None:
    """A line on stderr: a full run takes minutes, and stdout is the report."""
    print(message, file=sys.stderr, flush=True)


def build_engines(model, graphs: OnnxGraphs, model_dir: str, workdir: str, args):
    """(fp32 engines, int8 engines, bfloat16 engines), rnnsearch first in each."""
    fp32 = RnnsearchEngine(model_dir, "float32")
    target = fp32.translator().target_vocab.ids
    bos, eos = target["<s>"], target["</s>"]
    top_k_graphs = with_top_k(graphs, eos, os.path.join(workdir, "decoder_top_k.onnx"))
    fp32_engines = [fp32, OrtBeamSearch(top_k_graphs, bos),
                    TorchBeamSearch(model, bos, eos, "PyTorch eager"),
                    TorchBeamSearch(prepacked_onednn(model), bos, eos, "PyTorch oneDNN")]
    if args.torch_compile:
        fp32_engines.append(TorchBeamSearch(compiled_frozen(model), bos, eos,
                                            "PyTorch compiled"))
    bf16_engines = [] if args.no_bf16 else [
        RnnsearchEngine(model_dir, "bfloat16"),
        TorchBeamSearch(linearized(model), bos, eos, "PyTorch bf16 autocast",
                        autocast=torch.bfloat16)]
    if args.no_int8:
        return fp32_engines, [], bf16_engines
    return fp32_engines, [
        RnnsearchEngine(model_dir, "int8"),
        OrtBeamSearch(quantized(top_k_graphs, workdir), bos, "ONNX Runtime int8"),
        TorchBeamSearch(dynamic_int8(model), bos, eos, "PyTorch int8")], bf16_engines


def run_size(size: Size, args, machine: dict, workdir: str) -> SizeResult:
    progress(f"[{size.name}] building the PyTorch model, exporting to ONNX, converting")
    torch.set_num_threads(1)
    model = random_model(size.config, size.source_vocab, size.target_vocab, seed=0).eval()
    graphs = export_onnx(model, workdir)
    model_dir, failure = rnnsearch_model_dir(model, graphs, size, workdir)
    fp32_engines, int8_engines, bf16_engines = build_engines(model, graphs, model_dir,
                                                             workdir, args)
    others = int8_engines + bf16_engines
    count = max(args.sentences, args.batch_size)
    sentences = np.array(random_sources(size.source_vocab, count, size.source_length), np.int64)
    batch_sentences = sentences[:args.batch_size]
    progress(f"[{size.name}] identity check and agreement")
    agreed = agreement(fp32_engines[0], fp32_engines + others, batch_sentences,
                       args.target_length)
    names = tuple(e.name for e in fp32_engines), tuple(e.name for e in int8_engines)
    result = SizeResult(size, failure, agreed,
                        identity_problems(agreed, names[0], len(batch_sentences)), names,
                        bf16_engines=tuple(e.name for e in bf16_engines))
    for case in cases(args.batch_size, args.thread_counts):
        progress(f"[{size.name}] timing {case.label}, {case.threads} thread(s)")
        workload = sentences[:args.sentences] if case.batch == 1 else batch_sentences
        result.timings.append((case, time_case(fp32_engines + others, case, workload,
                                               args.target_length, args.repeat)))
    from ..model_dir import load_model_dir   # the Translator keeps no view of the file
    result.floors = size_floors(load_model_dir(fp32_engines[0].translator().model_path).tensors,
                                result.timings, size, args.batch_size, args.target_length,
                                machine)
    return result


def load_note() -> str:
    """The 1-minute load average beside the core count: other work on the machine shows."""
    load, cores = os.getloadavg()[0], os.cpu_count()
    busy = " (other processes were running: the timings are noisy)" if load > 0.5 * cores \
        else ""
    return f"load average {load:.1f} on {cores} cores{busy}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    resolve_defaults(args, argv)
    from .._engine import kernel_isa
    machine = {"bandwidth": measure_bandwidth(), "sgemm": measure_sgemm(),
               "kernels": kernel_isa(), "int8_kernels": kernel_isa("int8"),
               "bf16_kernels": kernel_isa("bfloat16"), "cores": os.cpu_count(),
               "torch": torch.__version__,
               "onnxruntime": ort.__version__, "load_at_start": os.getloadavg()[0]}
    print(f"# rnnsearch vs ONNX Runtime vs PyTorch\n\n`{args.command}`\n\n"
          f"kernels {machine['kernels']} (int8 {machine['int8_kernels']}, bfloat16 "
          f"{machine['bf16_kernels']}), torch {machine['torch']}, onnxruntime "
          f"{machine['onnxruntime']}; {load_note()} at the start. ms per sentence, wall "
          f"time median [min–max] of {args.repeat} repetitions (engines in a rotated order, "
          f"every shape warmed up), CPU time = this process's, all threads; "
          f"× = engine time / rnnsearch time")
    if not numpy_blas_single_threaded():
        print("(NumPy's BLAS may be multi-threaded: set OPENBLAS_NUM_THREADS=1 to include "
              "it in the sgemm floor; PyTorch's one-thread sgemm is used)")
    results = []
    for size in selected_sizes(args):
        with tempfile.TemporaryDirectory() as workdir:
            results.append(run_size(size, args, machine, workdir))
        print_size(results[-1], args, machine)
        sys.stdout.flush()
    machine["load_at_end"] = os.getloadavg()[0]
    print(f"\n{load_note()} at the end")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(to_json(results, machine, args), f, indent=1)
    failed = any(r.check_problems for r in results)
    if failed and not args.no_check:
        print("\nidentity check FAILED: the engines disagree (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":   # how `rnnsearch bench --compare` runs it (bench/runner.py)
    sys.exit(main())
