"""onmt_translate's decoding options, run by OpenNMT-py itself on the fixture models (for
make_opennmt_fixtures.py). The worker half runs inside an OpenNMT-py virtualenv.

Each run is one onmt_translate command over the fixture's ten sentences with the given flags
(everything else at that release's defaults, -batch_size 30 included: the ten sentences form
one batch, as a user's file would); the expected outputs are every sentence's n-best list
with scores. Sampling runs translate the sentences SAMPLE_REPEATS times (1.x: one sample a
run) or with many paths, for a statistical comparison.
"""
from __future__ import annotations

import os
import sys

SUMMARIZATION = {"beam_size": 10, "min_length": 35, "stepwise_penalty": True,
                 "coverage_penalty": "summary", "beta": 5, "length_penalty": "wu",
                 "alpha": 0.9, "block_ngram_repeat": 3,
                 "ignore_when_blocking": [".", "</t>", "<t>"]}
SAMPLE_REPEATS = 20
# the phrase table -phrase_table runs read: a file of that name beside the model
PHRASE_TABLE = "phrase_table.txt"
PHRASE_TABLE_LINES = ["120|||ONE-TWENTY", "299|||TWO-NINETY-NINE", "z|||ZED", "12|||TWELVE",
                      "41|||FORTY-ONE", "287|||TWO-EIGHTY-SEVEN"]

# name -> (flags, which models: "all"; "search", "sampling" (the models every option runs
# on), with the releases that have them (2: 2.x and 3.x, 3: 3.x); "attention" (models that
# attend); "summary" (the copy models: forcing 35 tokens out of a model trained on 7 only
# drives it into loops whose scores tie exactly, and which of exactly tied candidates wins
# then depends on the last bits of every sum))
RUNS = {
    "defaults": ({}, "all"),
    "defaults_nbest": ({"n_best": 5}, "all"),
    "greedy": ({"beam_size": 1}, "all"),
    "none_nbest": ({"length_penalty": "none", "n_best": 5}, "search"),
    "avg": ({"length_penalty": "avg", "alpha": 1.0, "n_best": 3}, "search"),
    "wu": ({"length_penalty": "wu", "alpha": 0.9, "n_best": 3}, "search"),
    "wu_greedy": ({"beam_size": 1, "length_penalty": "wu", "alpha": 0.9}, "search"),
    "min_length": ({"min_length": 8, "n_best": 3}, "search"),
    "min_length_greedy": ({"beam_size": 1, "min_length": 8}, "search"),
    "max_length": ({"max_length": 3, "n_best": 5}, "search"),
    "block_ngram": ({"block_ngram_repeat": 2, "min_length": 9, "n_best": 3}, "search"),
    "block_ngram_ignore": ({"block_ngram_repeat": 3, "min_length": 12,
                            "ignore_when_blocking": [".", "</t>", "<t>", "L"], "n_best": 3},
                           "search"),
    "block_ngram_1": ({"block_ngram_repeat": 1, "n_best": 2}, "search"),
    "ratio": ({"ratio": 0.5, "n_best": 2}, "search"),
    "beam10": ({"beam_size": 10, "n_best": 10}, "search"),
    "batch1": ({"batch_size": 1, "n_best": 3, "min_length": 4}, "search"),
    "batch3": ({"batch_size": 3, "n_best": 3, "min_length": 4}, "search"),
    "batch_tokens": ({"batch_size": 20, "batch_type": "tokens", "n_best": 2}, "search"),
    "ban_unk": ({"ban_unk_token": True, "n_best": 3}, "search2"),
    "max_length_ratio": ({"max_length_ratio": 0.5, "n_best": 2}, "search3"),
    "max_length_ratio_batch3": ({"max_length_ratio": 0.5, "batch_size": 3}, "search3"),
    "coverage_wu": ({"coverage_penalty": "wu", "beta": 0.2, "n_best": 3, "batch_size": 1},
                    "attention"),
    "coverage_wu_batch": ({"coverage_penalty": "wu", "beta": 0.2, "n_best": 2}, "attention"),
    "coverage_wu_stepwise": ({"coverage_penalty": "wu", "beta": 0.2, "stepwise_penalty": True,
                              "n_best": 3, "batch_size": 1}, "attention"),
    "coverage_summary": ({"coverage_penalty": "summary", "beta": 5, "n_best": 3},
                         "attention"),
    "coverage_summary_stepwise": ({"coverage_penalty": "summary", "beta": 5,
                                   "stepwise_penalty": True, "n_best": 3}, "attention"),
    "summarization": (dict(SUMMARIZATION, n_best=3), "summary"),
    "summarization_greedy": (dict(SUMMARIZATION, beam_size=1), "summary"),
    "sample_topk": ({"random_sampling_topk": 4, "random_sampling_temp": 0.7, "seed": 7},
                    "sampling"),
    "sample_topp": ({"random_sampling_topp": 0.8, "seed": 7}, "sampling2"),
    "sample_full": ({"random_sampling_topk": -1, "random_sampling_temp": 1.5, "seed": 7},
                    "sampling"),
    # the same sampling with OpenNMT-py's random draws replaced by recorded ones
    # (one sentence per batch, so each draw belongs to one known sentence and step)
    "sample_topk_injected": ({"random_sampling_topk": 4, "random_sampling_temp": 0.7,
                              "batch_size": 1}, "sampling"),
    "sample_topp_injected": ({"random_sampling_topp": 0.8, "batch_size": 1}, "sampling2"),
    "sample_full_injected": ({"random_sampling_topk": -1, "random_sampling_temp": 1.5,
                              "batch_size": 1}, "sampling"),
    # -replace_unk: the models that produce <unk> are those on the wide copy task without
    # a copy generator; 3.5.1 crashes on it (beam and greedy search: recorded as errors)
    "replace_unk": ({"replace_unk": True, "n_best": 3}, "attention"),
    "replace_unk_phrase": ({"replace_unk": True, "phrase_table": PHRASE_TABLE, "n_best": 3},
                           "attention"),
    "replace_unk_batch3": ({"replace_unk": True, "batch_size": 3, "n_best": 2}, "attention"),
    "replace_unk_greedy": ({"replace_unk": True, "phrase_table": PHRASE_TABLE,
                            "random_sampling_topk": 1}, "attention2"),
    "sample_paths": ({"random_sampling_topk": 4, "random_sampling_temp": 0.7, "seed": 7,
                      "beam_size": 10, "n_best": 10}, "sampling2"),
    "greedy_temp": ({"random_sampling_topk": 1, "random_sampling_temp": 0.5}, "search2"),
}


def runs_for(version: int, attention: bool, copy: bool, full: bool) -> dict:
    """The runs a model gets: every model the defaults; `full` models every option their
    release has (2.x/3.x-only flags on those releases)."""
    chosen = {}
    for name, (flags, kind) in RUNS.items():
        if kind == "all" or (full and (
                kind in ("search", "sampling") or
                (kind in ("search2", "sampling2") and version >= 2) or
                (kind == "search3" and version >= 3) or
                (kind == "attention" and attention) or
                (kind == "attention2" and attention and version >= 2) or
                (kind == "summary" and copy))):
            chosen[name] = dict(flags)
    for name, flags in chosen.items():
        flags.setdefault("beam_size", 1) if name.startswith("sample") else None
    return chosen


# ---------------------------------------------------------------------------------------------
# worker side: inside an OpenNMT-py virtualenv


def flag_argv(flags: dict) -> list[str]:
    """onmt_translate's command-line form of flags: True -> -name, a list -> -name v1 v2..."""
    out = []
    for name, value in flags.items():
        if value is True:
            out.append(f"-{name}")
        elif isinstance(value, list):
            out += [f"-{name}"] + [str(v) for v in value]
        elif value is not False:
            out += [f"-{name}", str(value)]
    return out


def onmt_translate(version: int, model: str, src_path: str, out_path: str, flags: dict):
    """onmt_translate's own code path with `flags`; returns (scores, predictions) per
    sentence, n_best of each."""
    argv = ["-model", model, "-src", src_path, "-output", out_path] + flag_argv(flags)
    if version == 3:
        from onmt.bin.translate import _get_parser
        from onmt.inference_engine import InferenceEnginePY
        from onmt.utils.misc import set_random_seed
        from onmt.utils.parse import ArgumentParser
        opt = _get_parser().parse_args(argv)
        ArgumentParser.validate_translate_opts(opt)
        ArgumentParser._get_all_transform_translate(opt)
        ArgumentParser._validate_transforms_opts(opt)
        ArgumentParser.validate_translate_opts_dynamic(opt)
        set_random_seed(opt.seed, False)
        engine = InferenceEnginePY(opt)
        try:
            scores, predictions = engine.infer_file()
        finally:
            engine.terminate()
        return scores, predictions
    if version == 0:
        sys.argv = ["translate.py"] + argv
        import translate as onmt0_translate  # 0.9.2's translate.py, from its source tree
        from onmt.translate.translator import build_translator
        opt = onmt0_translate._get_parser().parse_args(argv)
        translator = build_translator(opt, report_score=False)
    else:
        from onmt.bin.translate import _get_parser
        from onmt.translate.translator import build_translator
        from onmt.utils.logging import init_logger
        from onmt.utils.parse import ArgumentParser
        opt = _get_parser().parse_args(argv)
        ArgumentParser.validate_translate_opts(opt)
        translator = build_translator(opt, logger=init_logger(), report_score=False)
    with open(src_path, "rb") as f:
        lines = f.readlines()
    return translator.translate(src=lines, batch_size=opt.batch_size,
                                batch_type=opt.batch_type, phrase_table=opt.phrase_table)


class InjectedDraws:
    """Replaces torch's categorical sampling (2.x/3.x: Categorical.sample, 1.x:
    Multinomial.sample) by inverse-CDF sampling (categories in index order) from a recorded
    stream of uniform draws, one per row: the draws can be replayed elsewhere."""

    def __init__(self, seed: int):
        import numpy as np
        self.random = np.random.RandomState(seed)
        self.used = []

    def _indices(self, logits):
        import numpy as np
        import torch
        rows = logits.reshape(-1, logits.shape[-1]).double().numpy()
        out = []
        for row in rows:
            u = float(self.random.random_sample())
            self.used.append(u)
            cumulated = np.cumsum(np.exp(row - row.max()))
            out.append(int(np.searchsorted(cumulated, u * cumulated[-1], side="right")))
        return torch.tensor(out, dtype=torch.long).reshape(logits.shape[:-1])

    def __enter__(self):
        import torch.distributions as d
        injected = self
        self.saved = d.Categorical.sample, d.Multinomial.sample

        def categorical(dist, sample_shape=()):
            return injected._indices(dist.logits)

        def multinomial(dist, sample_shape=()):
            import torch
            index = injected._indices(dist.logits)
            return torch.nn.functional.one_hot(index, dist.logits.shape[-1]).float()
        d.Categorical.sample, d.Multinomial.sample = categorical, multinomial
        return self

    def __exit__(self, *exc):
        import torch.distributions as d
        d.Categorical.sample, d.Multinomial.sample = self.saved


def run_all(version: int, model: str, src_path: str, runs: dict, work: str) -> list[dict]:
    """Every run; a run OpenNMT-py cannot do is recorded with its error. A phrase table
    flag names a file beside the model."""
    import traceback
    with open(src_path, encoding="utf-8") as f:
        sentences = [line.rstrip("\n") for line in f]
    out = []
    for name, flags in runs.items():
        repeats = SAMPLE_REPEATS if name.startswith("sample") and flags["beam_size"] == 1 \
            else 2 if name.startswith("sample") else 1
        path = src_path
        if repeats > 1:
            path = os.path.join(work, "repeated.src")
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(sentences * repeats) + "\n")
        record = {"name": name, "flags": flags, "repeats": repeats}
        try:
            import contextlib
            injected = InjectedDraws(11) if name.endswith("_injected") else None
            used = dict(flags)
            if "phrase_table" in used:
                used["phrase_table"] = os.path.join(os.path.dirname(model), used["phrase_table"])
            with injected or contextlib.nullcontext():
                scores, predictions = onmt_translate(version, model, path,
                                                     os.path.join(work, "pred.txt"), used)
            if injected:
                record["draws"] = injected.used
            record["results"] = [[[text, float(score)] for text, score in zip(p, s)]
                                 for p, s in zip(predictions, scores)]
        except Exception as e:  # noqa: BLE001 - OpenNMT-py's own failure is the fixture
            record["error"] = f"{type(e).__name__}: {e}"
            record["traceback"] = traceback.format_exc().splitlines()[-3:]
        out.append(record)
        print(f"    {name}: {'error' if 'error' in record else 'ok'}", file=sys.stderr)
    return out
