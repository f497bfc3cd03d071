"""Speed of feature-source models (issue 15): rnnsearch's translate_features against the
PyTorch reference model (rnnsearch.reference, the same architecture in plain PyTorch)
decoded by the batched beam search a PyTorch user writes (rnnsearch.bench.torch_search),
fp32, side by side in one run, alternating, warm; wall and CPU time per batch.

  captioning  Show, Attend and Tell size: 196 regions x 2048, no encoder layers, the mean
              bridge, relu additive attention 512, a gate per dimension, LSTM 512,
              embeddings 512, vocabulary 10k
  las         Listen, Attend and Spell size: 400 frames x 80, a BLSTM 256 and two pyramid
              BLSTM layers 256 (400 -> 100 memory positions), additive attention 512,
              LSTM decoder 512, vocabulary 5k

Both decode exactly --length tokens (EOS banned) with beam 5, at batch 1 and batch 16.
Random weights (speed does not depend on them). PyTorch runs eager, weights as loaded
(no oneDNN prepacking).

    python tools/bench_features.py                  # both models, markdown table
    python tools/bench_features.py --model las --repeat 5 --threads 1
    python tools/bench_features.py --floor   # adds the one-core floor (tools/cpu_peak.py)

--floor measures this core's FMA peak and streaming read rate first and adds each case's
floors (rnnsearch.bench.floors.search_floors: every matrix product at the FMA peak, and
per step the decoder weights the L3 cache cannot keep, or all of them, read at the
streaming rate) and PyTorch's time over them: the most any engine could be faster than
PyTorch on this machine in that run.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

from rnnsearch import Translator
from rnnsearch.bench.floors import search_floors
from rnnsearch.bench.torch_search import TorchBeamSearch
from rnnsearch.safetensors_io import read_safetensors
from rnnsearch.random_model import vocabularies
from rnnsearch.reference import Seq2Seq, export_model_dir

MODELS = {
    "captioning": ({"source": {"kind": "features", "feature_size": 2048, "vocabulary": None},
                    "encoder": {"num_layers": 0},
                    "bridge": {"type": "mean", "activation": "identity",
                               "lstm_cell": "bridged"},
                    "attention": {"score": "additive", "size": 512, "score_activation": "relu",
                                  "gate": True, "gate_per_dimension": True},
                    "decoder": {"type": "bahdanau", "embedding_size": 512, "cell": "lstm",
                                "hidden_size": 512, "readout_inputs": ["state"]}},
                   10000, 196),
    "las": ({"source": {"kind": "features", "feature_size": 80, "vocabulary": None},
             "encoder": {"cell": "lstm", "hidden_size": 256, "num_layers": 3,
                         "bidirectional": True, "subsample": [1, 2, 2, 1]},
             "attention": {"score": "additive", "size": 512},
             "decoder": {"type": "bahdanau", "embedding_size": 256, "cell": "lstm",
                         "hidden_size": 512, "readout_inputs": ["state", "context"]}},
            5000, 400),
}


def _time(run, repeat):
    """(median wall seconds, median CPU seconds) of run() over `repeat` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return float(np.median(walls)), float(np.median(cpus))


def positions(config, frames):
    """(positions each encoder layer runs on, memory positions) of a `concat`-subsampled
    feature encoder over `frames` frames."""
    encoder = config["encoder"]
    factors = encoder.get("subsample") or [1] * (encoder["num_layers"] + 1)
    length, layers = frames // factors[0], []
    for factor in factors[1:]:
        layers.append(length)
        length //= factor
    return layers, length


def floor_seconds(config, frames, tensors, batch, length, peak):
    layers, memory = positions(config, frames)
    return search_floors(tensors, layers, memory, batch, 5, length, peak["read"], peak["fma"])


def bench(name, args):
    config, vocab_size, frames = MODELS[name]
    torch.manual_seed(0)
    model = Seq2Seq(dict(config, format="rnnsearch-model", format_version=1), None,
                    vocab_size).eval()
    path = os.path.join(args.workdir, name)
    export_model_dir(model, path, None, vocabularies(4, vocab_size)[1])
    tensors = read_safetensors(os.path.join(path, "model.safetensors"))[0] if args.peak else None
    translator = Translator(path, intra_threads=args.threads)
    search = TorchBeamSearch(model, 2, 3)
    rng = np.random.default_rng(0)
    sizes = config["source"]["feature_size"]
    rows = []
    for batch in (1, 16):
        sources = rng.standard_normal((batch, frames, sizes)).astype(np.float32)

        def ours():
            translator.translate_features(list(sources), beam_size=5,
                                          min_decoding_length=args.length,
                                          max_decoding_length=args.length)

        def theirs():
            search.translate(sources, 5, args.length, args.threads)

        ours(), theirs()                      # warm
        results = {"rnnsearch": [], "PyTorch": []}
        for _ in range(args.repeat):          # alternating
            results["rnnsearch"].append(_time(ours, 1))
            results["PyTorch"].append(_time(theirs, 1))
        wall = {k: float(np.median([w for w, _ in v])) for k, v in results.items()}
        cpu = {k: float(np.median([c for _, c in v])) for k, v in results.items()}
        floor = (floor_seconds(config, frames, tensors, batch, args.length, args.peak)
                 if args.peak else None)
        rows.append((name, batch, wall["rnnsearch"], cpu["rnnsearch"], wall["PyTorch"],
                     cpu["PyTorch"], wall["PyTorch"] / wall["rnnsearch"], floor))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), nargs="+", default=sorted(MODELS))
    parser.add_argument("--length", type=int, default=20, help="tokens per output")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--floor", action="store_true",
                        help="add the one-core floor of each case (one thread only)")
    args = parser.parse_args()
    if args.floor and args.threads != 1:
        parser.error("--floor is a one-core bound: use it with --threads 1")
    args.peak = None
    if args.floor:
        from cpu_peak import describe, measure   # tools/, this script's directory
        args.peak = measure(3)
        print(describe(args.peak) + "\n")
    with tempfile.TemporaryDirectory() as args.workdir:
        rows = [row for name in args.model for row in bench(name, args)]
    print(f"`python {' '.join(sys.argv)}` (beam 5, {args.length} tokens, "
          f"{args.threads} thread(s), median of {args.repeat})\n")
    floors = args.peak is not None
    print("| model | batch | rnnsearch s (CPU s) | PyTorch s (CPU s) | speed-up |"
          + (" floor s: L3 keeps / streamed | PyTorch ÷ floor |" if floors else ""))
    print("|---|---|---|---|---|" + ("---|---|" if floors else ""))
    for name, batch, ow, oc, tw, tc, ratio, floor in rows:
        print(f"| {name} | {batch} | {ow:.3f} ({oc:.3f}) | {tw:.3f} ({tc:.3f}) | {ratio:.1f}x |"
              + (f" {floor[0]:.3f} / {floor[1]:.3f} | {tw / floor[0]:.1f}x / {tw / floor[1]:.1f}x |"
                 if floors else ""))

if __name__ == "__main__":
    main()
