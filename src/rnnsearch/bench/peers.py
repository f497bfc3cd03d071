"""`rnnsearch bench --compare`: rnnsearch against what a user would otherwise deploy,
PyTorch eager and ONNX Runtime, on the same model in one process.

    rnnsearch bench --compare             # small and nmt sizes, ~10 minutes on 2 cores
    rnnsearch bench --compare --quick     # a smoke run, well under a minute
    rnnsearch bench --compare --size nmt --repeat 7 --threads 1,2,4 --json out.json

Per model size:
1. a random model is built with the PyTorch reference (`rnnsearch.reference`), exported
   to ONNX as an encoder graph and a one-step decoder graph (`torch.onnx.export`,
   dynamo=False) and converted to an rnnsearch model directory by the project's own ONNX
   converter (if that fails, `export_model_dir` writes it instead and the report says so);
2. identity check: greedy and beam-5 tokens of rnnsearch, ONNX Runtime and PyTorch must
   be equal (a mismatch is an error exit unless --no-check);
3. timing: each case runs `--repeat` times, the engines alternating within every
   repetition so that machine drift hits all of them alike; the table gives the median
   [min-max] time per sentence;
4. floors: single-core memory bandwidth and sgemm rate, measured here, against the
   decoder weight bytes a batch-1 step must read and the FLOPs of a batched beam search.

Every engine decodes exactly `--target-length` tokens per sentence: EOS is banned until
then (rnnsearch: min = max decoding length), so all do the same work. The peers run the
beam search a user would write: all sentences x beam as rows of one batch, one decoder
call per step, top-k over beam x vocabulary, states reordered by row index.

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
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import onnx  # noqa: F401  (here so that a missing package fails at import, not midway)
import onnxruntime as ort
import torch
from torch import nn

from ..errors import ModelError
from ..random_model import vocabularies
from ..reference import export_model_dir, random_model
from ..reference.modules import DecoderState
from .floors import (beam_search_flops, decoder_step_bytes, measure_bandwidth, measure_sgemm,
                     numpy_blas_single_threaded)
from .sources import random_sources
from .torch_search import TorchBeamSearch

BEAM = 5
ENGINES = ("rnnsearch fp32", "rnnsearch int8", "ONNX Runtime", "PyTorch")


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


# -------------------------------------------------------------------- ONNX export

class EncoderGraph(nn.Module):
    """The reference encoder as a user writes it for export: one bidirectional
    nn.LSTM / nn.GRU holding the reference's weights (the reference runs every direction as
    its own module over packed sequences), then the reference's bridge and attention keys.
    Exact for sources without padding, which is all the benchmark feeds."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        layers = model.encoder.layers
        first = layers[0][0].rnn
        self.rnn = type(first)(first.input_size, first.hidden_size, num_layers=len(layers),
                               bidirectional=True, batch_first=True)
        with torch.no_grad():
            for index, layer in enumerate(layers):
                for direction, rnn in enumerate(layer):
                    suffix = f"_l{index}" + ("_reverse" if direction else "")
                    for name, param in rnn.cell_parameters().items():
                        getattr(self.rnn, name + suffix).copy_(param)

    def forward(self, src):
        model = self.model
        memory, final = self.rnn(model.encoder.embedding(src))
        h, c = final if isinstance(final, tuple) else (final, torch.zeros_like(final))
        finals = [([h[2 * l], h[2 * l + 1]], [c[2 * l], c[2 * l + 1]])
                  for l in range(h.size(0) // 2)]
        mask = torch.ones_like(src, dtype=torch.bool)
        hidden, cell = model.bridge(memory, mask, finals)
        outputs = [memory, model.attention_keys(memory), torch.stack(hidden)]
        if cell is not None:
            outputs.append(torch.stack(cell))
        return tuple(outputs)


class DecoderStepGraph(nn.Module):
    """One reference decoder step (`decode_step`, log-probabilities out) with the states
    as stacked tensors [layers, batch, H], as ONNX graphs carry them."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.lstm = isinstance(model.decoder.layers[0], nn.LSTMCell)
        self.input_feeding = model.decoder.input_feeding

    def forward(self, y, memory, keys, mask, h, *more):
        more = list(more)
        c = more.pop(0) if self.lstm else None
        feed = more.pop(0) if self.input_feeding else None
        hidden = [h[l] for l in range(h.size(0))]
        cell = None if c is None else [c[l] for l in range(c.size(0))]
        state = DecoderState(hidden, cell, hidden[-1], feed)
        log_probs, new, attention = self.model.decode_step(y, state, memory, mask, keys)
        outputs = [log_probs, torch.stack(new.hidden)]
        if self.lstm:
            outputs.append(torch.stack(new.cell))
        if self.input_feeding:
            outputs.append(new.feed)
        return tuple(outputs + [attention])


@dataclass(frozen=True)
class StateIO:
    """A decoder-step state input; the graph returns its next value as `{name}_out`."""
    name: str
    batch_axis: int
    width: int
    from_encoder: bool    # else it starts at zeros (Luong input feeding)


@dataclass(frozen=True)
class OnnxGraphs:
    encoder: str
    decoder: str
    states: tuple[StateIO, ...]


def export_onnx(model, directory: str) -> OnnxGraphs:
    """encoder.onnx (src -> memory, keys, h[, c]) and decoder.onnx (y, memory, keys, mask,
    states -> log_probs, next states, attention), batch and source length dynamic."""
    dec = model.decoder
    L, H, B, S = len(dec.layers), dec.hidden_size, 2, 7
    encoder, step = EncoderGraph(model).eval(), DecoderStepGraph(model).eval()
    states = [StateIO("h", 1, H, True)]
    if step.lstm:
        states.append(StateIO("c", 1, H, True))
    if step.input_feeding:
        states.append(StateIO("feed", 0, dec.attentional_width, False))
    src = torch.randint(4, model.source_vocab_size, (B, S))
    with torch.no_grad():
        encoded = encoder(src)
    state_examples = [torch.randn(L, B, s.width) if s.batch_axis else torch.randn(B, s.width)
                      for s in states]
    step_args = (torch.tensor([5, 6]), encoded[0], encoded[1], torch.ones(B, S, dtype=torch.bool),
                 *state_examples)
    by_rows = {0: "batch", 1: "length"}
    dynamic = {"y": {0: "batch"}, "memory": by_rows, "keys": by_rows, "mask": by_rows,
               **{s.name: {s.batch_axis: "batch"} for s in states}}
    paths = OnnxGraphs(os.path.join(directory, "encoder.onnx"),
                       os.path.join(directory, "decoder.onnx"), tuple(states))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's tracer warnings
        torch.onnx.export(encoder, (src,), paths.encoder, dynamo=False, input_names=["src"],
                          output_names=["memory", "keys"] + [s.name for s in states
                                                             if s.from_encoder],
                          dynamic_axes={"src": by_rows}, opset_version=17)
        torch.onnx.export(step, step_args, paths.decoder, dynamo=False,
                          input_names=list(dynamic),
                          output_names=["log_probs"] + [s.name + "_out" for s in states]
                          + ["attention"],
                          dynamic_axes=dynamic, opset_version=17)
    return paths


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

def top_k(totals: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest entries of every row, best first. Equal totals
    inside the k come in index order; which of several equal totals at the k-th place gets
    in is NumPy's choice (as it is torch.topk's), a tie that float scores hardly ever
    produce."""
    if k == 1:
        return totals.argmax(axis=1)[:, None]
    chosen = np.sort(np.argpartition(-totals, k - 1, axis=1)[:, :k], axis=1)
    order = np.argsort(-np.take_along_axis(totals, chosen, axis=1), axis=1, kind="stable")
    return np.take_along_axis(chosen, order, axis=1)


class OrtBeamSearch:
    """ONNX Runtime sessions for the two graphs (one pair per thread count) driven by a
    NumPy beam search."""
    name = "ONNX Runtime"

    def __init__(self, graphs: OnnxGraphs, bos: int, eos: int):
        self.graphs, self.bos, self.eos = graphs, bos, eos
        self._sessions = {}

    def _sessions_for(self, threads: int):
        if threads not in self._sessions:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            self._sessions[threads] = tuple(
                ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                for path in (self.graphs.encoder, self.graphs.decoder))
        return self._sessions[threads]

    def translate(self, sources: np.ndarray, beam_size: int, length: int, threads: int):
        encoder, decoder = self._sessions_for(threads)
        K, (B, S) = beam_size, sources.shape
        names = [o.name for o in encoder.get_outputs()]
        encoded = dict(zip(names, encoder.run(None, {"src": sources})))
        rows = np.repeat(np.arange(B), K)               # K beam rows per sentence
        fixed = {"memory": encoded["memory"][rows], "keys": encoded["keys"][rows],
                 "mask": np.ones((B * K, S), dtype=bool)}
        states = {s.name: np.take(encoded[s.name], rows, axis=s.batch_axis) if s.from_encoder
                  else np.zeros((B * K, s.width), np.float32) for s in self.graphs.states}
        outputs = ["log_probs"] + [s.name + "_out" for s in self.graphs.states]
        scores = np.full((B, K), -np.inf, np.float32)
        scores[:, 0] = 0.0                              # one live hypothesis at the start
        tokens = np.full(B * K, self.bos, np.int64)
        history = np.empty((B * K, 0), np.int64)
        first_row = np.arange(B)[:, None] * K
        for _ in range(length):
            log_probs, *new_states = decoder.run(outputs, {"y": tokens, **fixed, **states})
            log_probs[:, self.eos] = -np.inf            # fixed length: EOS stays banned
            V = log_probs.shape[1]
            totals = (scores.reshape(-1, 1) + log_probs).reshape(B, K * V)
            flat = top_k(totals, K)
            scores = np.take_along_axis(totals, flat, axis=1)
            parents = (first_row + flat // V).reshape(-1)
            tokens = (flat % V).reshape(-1)
            states = {s.name: np.take(value, parents, axis=s.batch_axis)
                      for s, value in zip(self.graphs.states, new_states)}
            history = np.concatenate([history[parents], tokens[:, None]], axis=1)
        return history.reshape(B, K, -1)[:, 0].tolist()


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


# ----------------------------------------------------------------- identity check

def identity_check(engines, sentences: np.ndarray, length: int) -> list[str]:
    """Greedy and beam search on every engine (1 thread); -> the disagreements (none when
    all engines give identical tokens)."""
    problems = []
    reference, others = engines[0], engines[1:]
    for beam in (1, BEAM):
        expected = reference.translate(sentences, beam, length, 1)
        for engine in others:
            got = engine.translate(sentences, beam, length, 1)
            differ = [i for i, (a, b) in enumerate(zip(expected, got)) if a != b]
            if differ:
                problems.append(f"beam {beam}: {engine.name} differs from {reference.name} on "
                                f"sentence(s) {differ} of {len(sentences)}")
    return problems


def int8_agreement(fp32, int8, sentences: np.ndarray, length: int) -> dict[str, float]:
    """How far int8 greedy output follows fp32's: the share of equal positions, of
    identical sentences, and the mean length of the common prefix (after a first
    difference the two decode different prefixes, so later positions say little)."""
    a = np.array(fp32.translate(sentences, 1, length, 1))
    b = np.array(int8.translate(sentences, 1, length, 1))
    equal = a == b
    prefix = np.where(equal.all(axis=1), length, np.argmin(equal, axis=1))
    return {"positions": float(equal.mean()), "sentences": float(equal.all(axis=1).mean()),
            "common_prefix": float(prefix.mean())}


# ------------------------------------------------------------------------- timing

@dataclass(frozen=True)
class Case:
    batch: int
    beam: int
    threads: int

    @property
    def label(self) -> str:
        return f"batch {self.batch}, " + ("greedy" if self.beam == 1 else f"beam {self.beam}")


def cases(batch: int, thread_counts: list[int]) -> list[Case]:
    """Batch 1 greedy and beam, batch beam at 1 thread, then the same at more threads."""
    return [Case(1, 1, 1), Case(1, BEAM, 1)] + [Case(batch, BEAM, t) for t in thread_counts]


def time_case(engines, case: Case, sentences: np.ndarray, length: int, repeat: int
              ) -> dict[str, list[float]]:
    """ms per sentence of every repetition, per engine. The engines alternate within a
    repetition so that drift of the machine hits all of them alike."""
    calls = [sentences[i:i + case.batch] for i in range(0, len(sentences), case.batch)]
    for engine in engines:  # first-call costs (thread pools, allocators) stay out
        engine.translate(sentences[:1], 1, 2, case.threads)
    times = {engine.name: [] for engine in engines}
    for _ in range(repeat):
        for engine in engines:
            start = time.perf_counter()
            for call in calls:
                engine.translate(call, case.beam, length, case.threads)
            elapsed = time.perf_counter() - start
            times[engine.name].append(1000.0 * elapsed / len(sentences))
    return times


# ------------------------------------------------------------------------- report

@dataclass
class SizeResult:
    size: Size
    conversion_failure: str | None
    check_problems: list[str]
    int8_agreement: dict[str, float]
    timings: list[tuple[Case, dict[str, list[float]]]] = field(default_factory=list)
    floors: dict = field(default_factory=dict)


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}–{max(values):.2f}]"


def speed_ratio(times: dict[str, list[float]], peer: str) -> str:
    return f"{statistics.median(times[peer]) / statistics.median(times['rnnsearch fp32']):.1f}×"


def markdown_table(result: SizeResult) -> str:
    header = ["case", "threads", *(f"{e} ms/sent." for e in ENGINES), "× vs ORT",
              "× vs PyTorch"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for case, times in result.timings:
        cells = [case.label, str(case.threads), *(summary(times[e]) for e in ENGINES),
                 speed_ratio(times, "ONNX Runtime"), speed_ratio(times, "PyTorch")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def size_floors(tensors: dict, timings, size: Size, batch: int, length: int,
                machine: dict) -> dict:
    """Bandwidth floor of a batch-1 greedy step and sgemm floor of the batch beam search,
    and the fraction of each that rnnsearch fp32 achieves (1 thread)."""
    measured = {(c.batch, c.beam, c.threads): statistics.median(t["rnnsearch fp32"])
                for c, t in timings}
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


def rates(measured: dict[str, float]) -> str:
    """'numpy sum 23.1, torch sum 27.9' (per 1e9) from a measurement, without its best."""
    return ", ".join(f"{k} {v / 1e9:.1f}" for k, v in measured.items() if k != "best")


def floors_text(floors: dict, machine: dict, batch: int, length: int) -> str:
    bw, gemm = machine["bandwidth"], machine["sgemm"]
    lines = [
        f"- memory bandwidth floor: decoder weights read per step "
        f"{floors['decoder_step_bytes'] / 1e6:.1f} MB / {bw['best'] / 1e9:.1f} GB/s "
        f"(one core: {rates(bw)}) = "
        f"{floors['step_floor_ms']:.3f} ms/step; rnnsearch fp32 batch 1 greedy "
        f"{floors['step_ms']:.3f} ms/step (sentence time / {length}, encoder included) "
        f"= {100 * floors['step_fraction']:.0f}% of the floor",
        f"- sgemm floor: batch {batch} beam {BEAM} = {floors['beam_flops'] / 1e9:.1f} GFLOP "
        f"/ {gemm['best'] / 1e9:.1f} GFLOP/s (one core: {rates(gemm)}) = "
        f"{floors['beam_floor_ms']:.1f} ms; rnnsearch fp32 {floors['beam_ms']:.1f} ms "
        f"= {100 * floors['beam_fraction']:.0f}% of the floor",
    ]
    if floors["step_fraction"] > 1:
        lines.append("- above 100% of the bandwidth floor: the decoder weights stay (partly) "
                     "in the CPU caches between steps, or rnnsearch streams memory faster than "
                     "the loops measured here")
    if floors["beam_fraction"] > 1:
        lines.append("- above 100% of the sgemm floor: the library sgemm measured here is "
                     "slower than rnnsearch's own kernels on this CPU, or the machine was "
                     "busier while it was measured")
    return "\n".join(lines)


def describe_size(size: Size, sentences: int, batch: int, length: int) -> str:
    enc, dec = size.config["encoder"], size.config["decoder"]
    return (f"{size.name}: {enc['num_layers']}-layer bi{enc['cell'].upper()} "
            f"{enc['hidden_size']}/direction encoder, {size.config['bridge']['type']} bridge, "
            f"{dec['type']} {dec.get('num_layers', 1)}-layer "
            f"{dec['cell'].upper()} {dec['hidden_size']} decoder, "
            f"{size.config['attention']['score']} attention; vocab {size.source_vocab} -> "
            f"{size.target_vocab}; source {size.source_length} tokens, target {length}; "
            f"batch-1 cases over {sentences} sentences, batch cases one call of {batch}")


def to_json(results: list[SizeResult], machine: dict, args) -> dict:
    return {
        "machine": machine, "target_length": args.target_length, "repeat": args.repeat,
        "sizes": [{
            "size": r.size.name, "config": r.size.config, "source_vocab": r.size.source_vocab,
            "target_vocab": r.size.target_vocab, "source_length": r.size.source_length,
            "onnx_conversion": "failed: " + r.conversion_failure if r.conversion_failure
            else "ok",
            "identity_check": {"passed": not r.check_problems, "problems": r.check_problems},
            "int8_greedy_agreement": r.int8_agreement,
            "cases": [{"case": c.label, "batch": c.batch, "beam": c.beam, "threads": c.threads,
                       "ms_per_sentence": t} for c, t in r.timings],
            "floors": r.floors,
        } for r in results]}


# --------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rnnsearch bench --compare",
        description="rnnsearch vs ONNX Runtime vs PyTorch eager on one model (exported to "
                    "ONNX and converted by rnnsearch's ONNX converter): identity check, "
                    "timings, and the memory-bandwidth and sgemm floors.")
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
    p.add_argument("--no-check", action="store_true",
                   help="report an identity-check mismatch without failing")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the results here")
    return p


def resolve_defaults(args) -> None:
    quick = args.quick
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


def run_size(size: Size, args, machine: dict, workdir: str) -> SizeResult:
    progress(f"[{size.name}] building the PyTorch model, exporting to ONNX, converting")
    torch.set_num_threads(1)
    model = random_model(size.config, size.source_vocab, size.target_vocab, seed=0)
    graphs = export_onnx(model, workdir)
    model_dir, failure = rnnsearch_model_dir(model, graphs, size, workdir)
    fp32, int8 = RnnsearchEngine(model_dir, "float32"), RnnsearchEngine(model_dir, "int8")
    target = fp32.translator().target_vocab.ids
    bos, eos = target["<s>"], target["</s>"]
    peers = [OrtBeamSearch(graphs, bos, eos), TorchBeamSearch(model, bos, eos)]
    count = max(args.sentences, args.batch_size)
    sentences = np.array(random_sources(size.source_vocab, count, size.source_length), np.int64)
    batch_sentences = sentences[:args.batch_size]
    progress(f"[{size.name}] identity check")
    result = SizeResult(size, failure,
                        identity_check([fp32, *peers], batch_sentences, args.target_length),
                        int8_agreement(fp32, int8, batch_sentences, args.target_length))
    engines = [fp32, int8, *peers]
    for case in cases(args.batch_size, args.thread_counts):
        progress(f"[{size.name}] timing {case.label}, {case.threads} thread(s)")
        workload = sentences[:args.sentences] if case.batch == 1 else batch_sentences
        result.timings.append((case, time_case(engines, case, workload, args.target_length,
                                               args.repeat)))
    result.floors = size_floors(fp32.translator().files.tensors, result.timings, size,
                                args.batch_size, args.target_length, machine)
    return result


def print_size(result: SizeResult, args, machine: dict) -> None:
    size = result.size
    print(f"\n## {size.name}\n")
    print(describe_size(size, args.sentences, args.batch_size, args.target_length))
    if result.conversion_failure:
        print(f"\n!!! ONNX CONVERSION FAILED: {result.conversion_failure}\n"
              f"!!! the rnnsearch model directory was written by export_model_dir instead")
    else:
        print("\nrnnsearch model: converted from the ONNX graphs by rnnsearch.convert.onnx")
    verdict = "PASSED (rnnsearch fp32 = ONNX Runtime = PyTorch)" if not result.check_problems \
        else "FAILED: " + "; ".join(result.check_problems)
    print(f"identity check, greedy and beam {BEAM} on {args.batch_size} sentences: {verdict}")
    agree = result.int8_agreement
    print(f"int8 vs fp32, greedy: {100 * agree['positions']:.1f}% of tokens equal, "
          f"{100 * agree['sentences']:.0f}% of sentences identical, first difference after "
          f"{agree['common_prefix']:.1f} tokens on average (random weights: far more "
          f"near-ties than a trained model has)\n")
    print(markdown_table(result))
    print()
    print(floors_text(result.floors, machine, args.batch_size, args.target_length))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    resolve_defaults(args)
    from .._engine import kernel_isa
    machine = {"bandwidth": measure_bandwidth(), "sgemm": measure_sgemm(),
               "kernels": kernel_isa(), "cores": os.cpu_count(), "torch": torch.__version__,
               "onnxruntime": ort.__version__}
    print(f"# rnnsearch vs ONNX Runtime vs PyTorch\n\nkernels {machine['kernels']}, "
          f"{machine['cores']} cores, torch {machine['torch']}, onnxruntime "
          f"{machine['onnxruntime']}; ms per sentence, median [min–max] of {args.repeat} "
          f"repetitions; × = how many times faster rnnsearch fp32 is")
    if not numpy_blas_single_threaded():
        print("(NumPy's BLAS may be multi-threaded: set OPENBLAS_NUM_THREADS=1 to include "
              "it in the sgemm floor; PyTorch's one-thread sgemm is used)")
    results = []
    for size in selected_sizes(args):
        with tempfile.TemporaryDirectory() as workdir:
            results.append(run_size(size, args, machine, workdir))
        print_size(results[-1], args, machine)
        sys.stdout.flush()
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
