"""`rnnsearch translate --search opennmt`: onmt_translate's command line on a converted
OpenNMT-py model. Its flags keep their names (-beam_size, -length_penalty wu, -alpha,
-block_ngram_repeat, -replace_unk, -batch_size, ...; -src, -output and -model name the
input, output and model directory), its defaults are the checkpoint's release's, and the
output is onmt_translate's: n_best lines per input line, `-with_score` appending a tab and
the score."""
from __future__ import annotations

import argparse

from .opennmt_search.options import (BATCH_TYPES, COVERAGE_PENALTIES, LENGTH_PENALTIES,
                                     OpenNMTOptions)

# onmt_translate's flags this command takes, and what each does
_HELP = """
beam_size             beam size (1: greedy)
n_best                hypotheses written per line
min_length            minimum output tokens
max_length            maximum output tokens
max_length_ratio      3.x: cap the length at ratio x the batch's longest source + 5
ratio                 stop a sentence by the ratio of scores (OpenNMT-py's -ratio)
length_penalty        length penalty
alpha                 length penalty weight
coverage_penalty      coverage penalty
beta                  coverage penalty weight
stepwise_penalty      apply the coverage penalty at every step
block_ngram_repeat    block repeated n-grams of this size
ignore_when_blocking  tokens whose n-grams may repeat
replace_unk           replace <unk> by the most attended source token
phrase_table          source|||target pairs for -replace_unk
ban_unk_token         never produce <unk>
random_sampling_topk  sample from the k best tokens (-1: all)
random_sampling_topp  sample from the smallest set of probability p
random_sampling_temp  sampling temperature
seed                  random seed (-1: a fresh one)
batch_size            sentences (or tokens) per OpenNMT-py batch (default 30)
batch_type            what -batch_size counts
opennmt_version       whose rules and defaults: 1, 2 or 3 (default: the checkpoint's)
per_sentence          every sentence as a batch of its own
"""
_FLAGS = dict(line.split(None, 1) for line in _HELP.strip().splitlines())
_CHOICES = {"length_penalty": LENGTH_PENALTIES, "coverage_penalty": COVERAGE_PENALTIES,
            "batch_type": BATCH_TYPES}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--search", choices=["default", "opennmt"], default="default",
                        help="opennmt: OpenNMT-py's own search with onmt_translate's flags "
                             "(below)")
    group = parser.add_argument_group(
        "onmt_translate's options (with --search opennmt; -x or --x)")
    defaults = OpenNMTOptions()
    for name, text in _FLAGS.items():
        kind = type(getattr(defaults, name))  # the option's type, from its default
        how = {"action": "store_const", "const": True} if kind is bool else \
            {"nargs": "+", "metavar": "TOKEN"} if kind is tuple else \
            {"choices": _CHOICES[name]} if name in _CHOICES else {"type": kind}
        group.add_argument(f"-{name}", f"--{name}", dest=f"onmt_{name}", default=None,
                           help=text, **how)
    group.add_argument("-with_score", "--with_score", dest="onmt_with_score",
                       action="store_true", help="append a tab and the score")
    group.add_argument("-src", "--src", dest="input", default=None, help="same as -i")
    group.add_argument("-output", dest="output", default=None, help="same as -o")
    group.add_argument("-model", dest="model", default=None, help="same as -m")


def given_flags(args) -> dict:
    return {name: getattr(args, f"onmt_{name}") for name in _FLAGS
            if getattr(args, f"onmt_{name}") is not None}


# the default search's decoding options, which OpenNMT-py spells its own way
_OURS = {"beam_size": "-beam_size", "n_best": "-n_best", "max_length": "-max_length",
         "min_length": "-min_length", "length_penalty": "-length_penalty and -alpha",
         "coverage_penalty": "-coverage_penalty and -beta",
         "normalize_scores": "-length_penalty avg", "suppress": "-ban_unk_token",
         "with_scores": "-with_score", "replace_unk": "-replace_unk",
         "phrase_table": "-phrase_table", "with_alignment": None, "plot_attention": None,
         "ray": None, "shrinking_beam": None, "length_normalization": None,
         "word_penalty": None, "max_length_factor": None, "output_format": None,
         "alignment": None}


def check_arguments(args, defaults: argparse.Namespace) -> None:
    """Each search reads its own options: a clear error when the other's are given."""
    flags = given_flags(args)
    if args.search != "opennmt":
        if flags or args.onmt_with_score:
            shown = sorted("-" + f for f in flags) + (["-with_score"] if args.onmt_with_score
                                                      else [])
            raise ValueError(f"{', '.join(shown)}: OpenNMT-py's options need --search opennmt")
        return
    for name, theirs in _OURS.items():
        if getattr(args, name) != getattr(defaults, name):
            raise ValueError(f"--{name.replace('_', '-')} is not an option of --search "
                             "opennmt" + (f"; use {theirs}" if theirs else ""))


def translate_lines(translator, lines: list[str], args, out) -> None:
    """Translate and write the lines as onmt_translate writes them: n_best lines each."""
    flags = given_flags(args)
    if translator.config["source"]["per_word"]:
        raise ValueError("--search opennmt translates whole lines; this model is per word")
    sources = [translator.tokenize(line) for line in lines]
    results = translator.translate_batch(sources, search="opennmt",
                                         return_scores=args.onmt_with_score,
                                         truncate=args.truncate, **flags)
    n_best = flags.get("n_best", 1)
    for result in results:
        for i in range(n_best):
            text = translator.detokenize(result.hypotheses[i]) \
                if i < len(result.hypotheses) else ""
            if args.onmt_with_score:
                text += f"\t{result.scores[i] if i < len(result.scores) else float('-inf')}"
            out.write(text + "\n")
