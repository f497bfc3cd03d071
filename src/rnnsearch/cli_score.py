"""`rnnsearch score`: the log-probability the model gives each target line for its source
line (forced decoding, Translator.score_batch)."""
from __future__ import annotations

import contextlib
import sys

from .cli_options import add_compute_type, add_model_and_output


def add_score_parser(sub) -> None:
    p = sub.add_parser("score", help="score target lines given source lines (forced decoding)")
    add_model_and_output(p)
    p.add_argument("-s", "--source", required=True, help="source lines (raw text)")
    p.add_argument("-t", "--target", required=True,
                   help="target lines (raw text, tokenized with the model's target tokenizer)")
    p.add_argument("--batch-size", type=int, default=32, help="sentences per engine call")
    p.add_argument("--with-tokens", action="store_true",
                   help="append ' ||| ' and every scored token with its log-probability")
    add_compute_type(p)
    p.set_defaults(func=cmd_score)


def _lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").rstrip("\r") for line in f]


def cmd_score(args) -> int:
    """One line per pair: the total log-probability (target tokens and EOS), then, with
    --with-tokens, ' ||| ' and token:log-probability pairs."""
    from .safetensors_io import atomic_write
    from .translator import Translator

    translator = Translator(args.model, compute_type=args.compute_type)
    if translator.config["source"]["per_word"]:
        raise ValueError("rnnsearch score does not support per-word models")
    sources, targets = _lines(args.source), _lines(args.target)
    if len(sources) != len(targets):
        raise ValueError(f"{args.source} has {len(sources)} lines but {args.target} has "
                         f"{len(targets)}")
    to_file = args.output not in (None, "-")
    output = atomic_write(args.output, "w", encoding="utf-8") if to_file else \
        contextlib.nullcontext(sys.stdout)
    with output as out:
        for start in range(0, len(sources), args.batch_size):
            results = translator.score_batch(
                [translator.tokenize(s) for s in sources[start:start + args.batch_size]],
                [translator.target_tokenizer.encode(t)
                 for t in targets[start:start + args.batch_size]])
            for result in results:
                line = f"{result.total:.6f}"
                if args.with_tokens:
                    line += " ||| " + " ".join(f"{token}:{value:.6f}" for token, value in
                                               zip(result.tokens, result.log_probs))
                out.write(line + "\n")
    return 0
