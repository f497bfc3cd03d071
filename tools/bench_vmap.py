"""Decoding with a vocabulary map (translate_batch(use_vmap=True), docs/vmap.md) against
decoding over the whole target vocabulary, on the same model, side by side.

The model: the NMT size of `rnnsearch bench` (2-layer biLSTM 512 encoder, 2-layer Luong
LSTM 1024 decoder with input feeding, 32k source and target vocabularies), random weights.
The map is built by `rnnsearch build-vmap`'s builder from a synthetic parallel corpus in
which every source word has a few fixed translations and the target side also draws
Zipf-distributed frequent words, so a 25-token sentence's candidates number a few hundred
to a couple of thousand, as with a real map. Sentences are drawn like the corpus's.

Both engines run warm, in rotated order, one thread; wall and CPU time per sentence.
Agreement: the share of sentences whose best hypothesis is the same with and without the
map (random weights: no statement about a trained model; see tools/vmap_agreement.py).

    python tools/bench_vmap.py [--vocab 32000] [--sentences 20] [--repeat 5]
                               [--compute-type float32|int8] [--top-k 20] [--frequent 100]

Prints a Markdown table and the command line.
"""
from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile

import numpy as np


def synthetic_corpus(rng, source_vocab: list[str], target_vocab: list[str], lines: int,
                     length: int, translations: int = 3):
    """(source tokens, target tokens) pairs: Zipf-distributed source words, each written
    on the target side as one of its `translations` fixed target words, plus frequent
    target words (Zipf over the first 500)."""
    words = np.array(source_vocab[4:])
    targets = np.array(target_vocab[4:])
    meaning = rng.integers(0, len(targets), (len(words), translations))
    source_cdf = np.cumsum(1.0 / np.arange(1, len(words) + 1))
    frequent_cdf = np.cumsum(1.0 / np.arange(1, 501))
    pairs = []
    for _ in range(lines):
        w = np.searchsorted(source_cdf, rng.random(length) * source_cdf[-1])
        t = meaning[w, rng.integers(0, translations, length)]
        fill = np.searchsorted(frequent_cdf, rng.random(length // 2) * frequent_cdf[-1])
        pairs.append((words[w].tolist(), targets[np.concatenate([t, fill])].tolist()))
    return pairs


class VmapEngine:
    def __init__(self, name: str, translator, use_vmap: bool):
        self.name, self.translator, self.use_vmap = name, translator, use_vmap

    def translate(self, call, beam, length, threads):
        return self.translator.translate_batch(call, beam_size=beam, max_decoding_length=length,
                                               use_vmap=self.use_vmap)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--sentences", type=int, default=20, help="sentences per repetition")
    parser.add_argument("--source-length", type=int, default=25)
    parser.add_argument("--max-length", type=int, default=40, help="max decoding length")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--corpus-lines", type=int, default=20000)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--frequent", type=int, default=100)
    parser.add_argument("--compute-type", default="float32", choices=["float32", "int8"])
    args = parser.parse_args()

    import rnnsearch
    from rnnsearch.bench.timing import Case, time_case
    from rnnsearch.random_model import SIZES, sized_config, vocabularies, write_random_model
    from rnnsearch.vmap_build import build_vocab_map
    from rnnsearch.vocab_map import VMAP_FILE, write_vocab_map

    SIZES["nmt"] = dict(SIZES["nmt"], src_vocab=args.vocab, tgt_vocab=args.vocab)
    config, vs, vt = sized_config("nmt")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench-vmap-") as directory:
        write_random_model(directory, config, vs, vt, seed=0)
        src, tgt = vocabularies(vs, vt)
        corpus = synthetic_corpus(rng, src, tgt, args.corpus_lines, args.source_length)
        rules, always = build_vocab_map(corpus, args.top_k, args.frequent)
        write_vocab_map(os.path.join(directory, VMAP_FILE), rules, always)
        translator = rnnsearch.Translator(directory, compute_type=args.compute_type)
        sentences = [s for s, _ in synthetic_corpus(rng, src, tgt, args.sentences,
                                                     args.source_length)]
        sizes = [translator.vocab_map.candidates(s).size for s in sentences]
        engines = [VmapEngine("full vocabulary", translator, False),
                   VmapEngine("vocabulary map", translator, True)]
        case = Case(1, args.beam, 1)
        times = time_case(engines, case, sentences, args.max_length, args.repeat)
        full = translator.translate_batch(sentences, beam_size=args.beam,
                                          max_decoding_length=args.max_length)
        mapped = translator.translate_batch(sentences, beam_size=args.beam,
                                            max_decoding_length=args.max_length,
                                            use_vmap=True)
    same = sum(a.hypotheses[0] == b.hypotheses[0] for a, b in zip(full, mapped))
    base, base_cpu = times["full vocabulary"].median, times["full vocabulary"].cpu_median
    print(f"NMT size, {args.vocab} target tokens, {args.compute_type}, batch 1, beam "
          f"{args.beam}, {args.source_length}-token sources, one thread; candidates per "
          f"sentence: median {int(statistics.median(sizes))} (min {min(sizes)}, max "
          f"{max(sizes)}); rules: {len(rules)}, always included: {len(always) + 3}\n")
    print("| decoding | ms/sentence (wall) | ms/sentence (CPU) | speed-up (wall) | (CPU) |")
    print("|---|---|---|---|---|")
    for name, timing in times.items():
        print(f"| {name} | {timing.median:.1f} [{min(timing.wall):.1f}-{max(timing.wall):.1f}]"
              f" | {timing.cpu_median:.1f} | {base / timing.median:.2f}x | "
              f"{base_cpu / timing.cpu_median:.2f}x |")
    print(f"\nbest hypothesis identical with and without the map: {same}/{len(sentences)} "
          "sentences (random weights)")
    print(f"\ncommand: python {' '.join(shlex.quote(a) for a in sys.argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
