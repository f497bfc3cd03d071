"""Evaluate a G2P model directory on the CMUdict test (or dev) split.

    PYTHONPATH=src python tools/eval_g2p.py [MODEL_DIR] [--split test] [--beams 1 5]

Decodes with the rnnsearch engine (rnnsearch.Translator); with --reference (or when the
compiled engine is unavailable) with the PyTorch reference search instead.  Prints WER and
PER (a word is right if it matches any reference pronunciation; see g2p_data.py), the
same with stress digits ignored (comparable to published stress-free CMUdict numbers),
and decoding speed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import g2p_data  # noqa: E402

DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "models", "g2p-en")


class EngineDecoder:
    name = "rnnsearch engine"

    def __init__(self, model_dir: str, threads: int, compute_type: str = "float32"):
        import rnnsearch
        self.translator = rnnsearch.Translator(model_dir, intra_threads=threads,
                                               compute_type=compute_type)
        self.name = f"rnnsearch engine ({compute_type})"

    def __call__(self, words: list[list[str]], beam_size: int, max_length: int
                 ) -> list[list[str]]:
        results = self.translator.translate_batch(words, beam_size=beam_size,
                                                  max_decoding_length=max_length)
        return [r.hypotheses[0] if r.hypotheses else [] for r in results]


class ReferenceDecoder:
    name = "PyTorch reference search"

    def __init__(self, model_dir: str, threads: int):
        import torch
        from rnnsearch.model_dir import load_model_dir as load_files
        from rnnsearch.reference import load_model_dir as load_reference
        torch.set_num_threads(threads)
        self.model, self.bos, self.eos = load_reference(model_dir)
        files = load_files(model_dir)
        self.source_ids = files.source_vocab.ids
        self.target_tokens = files.target_vocab.tokens
        self.unk = self.source_ids[files.config["special_tokens"]["unk"]]

    def __call__(self, words: list[list[str]], beam_size: int, max_length: int
                 ) -> list[list[str]]:
        from rnnsearch.reference.search import translate
        out = []
        for w in words:
            ids = [self.source_ids.get(c, self.unk) for c in w]
            hyps = translate(self.model, ids, self.bos, self.eos, beam_size=beam_size,
                             max_decoding_length=max_length)
            out.append([self.target_tokens[i] for i in hyps[0].tokens] if hyps else [])
        return out


def evaluate(decoder, entries, beam_size: int, batch_size: int, max_length: int):
    words = [g2p_data.word_to_chars(w) for w, _ in entries]
    refs = [prons for _, prons in entries]
    predictions: list[list[str]] = []
    start = time.perf_counter()
    for i in range(0, len(words), batch_size):
        predictions += decoder(words[i:i + batch_size], beam_size, max_length)
    elapsed = time.perf_counter() - start
    return (predictions, g2p_data.score(predictions, refs),
            g2p_data.score(predictions, refs, ignore_stress=True), elapsed)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir", nargs="?", default=DEFAULT_MODEL)
    ap.add_argument("--split", default="test", choices=g2p_data.SPLITS)
    ap.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="engine intra_threads")
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--limit", type=int, default=0, help="only the first N words")
    ap.add_argument("--reference", action="store_true",
                    help="decode with the PyTorch reference search, not the engine")
    ap.add_argument("--compute-type", default="float32", choices=("float32", "int8", "bfloat16"))
    ap.add_argument("--compare", choices=("reference", "float32"),
                    help="also decode with the PyTorch reference (or the float32 engine) and "
                         "count the words whose output is identical")
    ap.add_argument("--errors", type=int, default=0,
                    help="print this many wrong words of the last beam setting")
    args = ap.parse_args(argv)

    if args.reference:
        decoder = ReferenceDecoder(args.model_dir, args.threads)
    else:
        try:
            decoder = EngineDecoder(args.model_dir, args.threads, args.compute_type)
        except ImportError as e:
            print(f"engine unavailable ({e}); using the reference search", file=sys.stderr)
            decoder = ReferenceDecoder(args.model_dir, args.threads)
    entries = g2p_data.load_split(args.split)
    if args.limit:
        entries = entries[:args.limit]
    print(f"model {args.model_dir}\n{args.split}: {len(entries)} words; decoder: "
          f"{decoder.name}")
    for beam in args.beams:
        predictions, s, s_free, elapsed = evaluate(decoder, entries, beam, args.batch_size,
                                                   args.max_length)
        print(f"beam {beam}: {s}   | stress ignored: WER {100 * s_free.wer:.2f}% "
              f"PER {100 * s_free.per:.2f}%   | {len(entries) / elapsed:.0f} words/s")
        sys.stdout.flush()
        if args.compare:
            other = ReferenceDecoder(args.model_dir, args.threads) \
                if args.compare == "reference" else EngineDecoder(args.model_dir, args.threads)
            theirs, *_ = evaluate(other, entries, beam, args.batch_size, args.max_length)
            same = sum(a == b for a, b in zip(predictions, theirs))
            print(f"  identical to {other.name}: {same}/{len(entries)} words "
                  f"({100 * same / len(entries):.2f}%)")
            sys.stdout.flush()
    if args.errors:
        shown = 0
        for (word, prons), pred in zip(entries, predictions):
            if pred not in prons:
                print(f"  {word:20s} {' '.join(pred):35s} ref: "
                      + " | ".join(" ".join(p) for p in prons))
                shown += 1
                if shown >= args.errors:
                    break


if __name__ == "__main__":
    main()
