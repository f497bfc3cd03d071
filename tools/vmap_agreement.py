"""How often decoding with a vocabulary map gives the same output as decoding over the
whole target vocabulary, on a trained model: the shipped G2P model (models/g2p-en, trained
on the CMUdict training split by tools/train_g2p.py), with a map built by
`rnnsearch build-vmap`'s builder from that same training split (letters -> phonemes), and
decoded on the test (or dev) split.

    python tools/vmap_agreement.py [--split test] [--beam 5] [--top-k 8] [--frequent 10]

Prints the share of words whose best hypothesis is identical, WER/PER with and without the
map, the candidates per word, and the command line. The G2P model's target vocabulary is
small (73 phonemes), so this measures agreement, not speed (tools/bench_vmap.py does).
"""
from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import g2p_data  # noqa: E402

MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models",
                     "g2p-en")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="test", choices=["dev", "test"])
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--top-k", type=int, default=8, help="phonemes per letter")
    parser.add_argument("--frequent", type=int, default=10,
                        help="most frequent phonemes, always candidates")
    parser.add_argument("--limit", type=int, default=0, help="first N words only (0: all)")
    args = parser.parse_args()

    import rnnsearch
    from rnnsearch.vmap_build import build_vocab_map
    from rnnsearch.vocab_map import write_vocab_map

    train = g2p_data.load_split("train")
    pairs = [(g2p_data.word_to_chars(word), pron) for word, prons in train for pron in prons]
    rules, always = build_vocab_map(pairs, args.top_k, args.frequent)
    translator = rnnsearch.Translator(MODEL)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "vmap.txt")
        write_vocab_map(path, rules, always)
        vmap = translator.load_vocab_map(path)
    entries = g2p_data.load_split(args.split)
    if args.limit:
        entries = entries[:args.limit]
    words = [g2p_data.word_to_chars(word) for word, _ in entries]
    references = [prons for _, prons in entries]
    options = dict(beam_size=args.beam, max_batch_size=64)
    full = [r.hypotheses[0] for r in translator.translate_batch(words, **options)]
    mapped = [r.hypotheses[0] for r in translator.translate_batch(words, use_vmap=vmap,
                                                                  **options)]
    same = sum(a == b for a, b in zip(full, mapped))
    sizes = [vmap.candidates(w).size for w in words]
    vocab = len(translator.target_vocab)
    print(f"G2P model (models/g2p-en), CMUdict {args.split} split, {len(words)} words, beam "
          f"{args.beam}; map from the training split: top {args.top_k} phonemes per letter, "
          f"{args.frequent} always included; candidates per word: median "
          f"{statistics.median(sizes):g} of {vocab} (min {min(sizes)}, max {max(sizes)})\n")
    print("| decoding | WER % | PER % |")
    print("|---|---|---|")
    for name, predictions in (("full vocabulary", full), ("vocabulary map", mapped)):
        s = g2p_data.score(predictions, references)
        print(f"| {name} | {100 * s.wer:.2f} | {100 * s.per:.2f} |")
    print(f"\nbest hypothesis identical: {same}/{len(words)} words "
          f"({100.0 * same / len(words):.2f} %)")
    print(f"\ncommand: python {' '.join(shlex.quote(a) for a in sys.argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
