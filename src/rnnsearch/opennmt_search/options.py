"""onmt_translate's decoding options: their names, each release's defaults, and the checks
OpenNMT-py makes (or would crash without).

The names are onmt_translate's own flags (`beam_size`, `length_penalty`, ...), so a call
reads like the command a user already runs. `opennmt_version` (1, 2 or 3) picks whose rules
and defaults apply; 0.x checkpoints decode with 1.x's (0.9.2's own beam search no longer
runs on current PyTorch). `per_sentence=True` decodes every sentence as a batch of its own
(what `onmt_translate -batch_size 1` gives), instead of reproducing the effects OpenNMT-py's
batches have on their sentences.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

VERSIONS = (1, 2, 3)
LENGTH_PENALTIES = ("none", "avg", "wu")
COVERAGE_PENALTIES = ("none", "wu", "summary")
BATCH_TYPES = ("sents", "tokens")


@dataclass(frozen=True)
class OpenNMTOptions:
    """One onmt_translate run's decoding options (OpenNMT-py 3.x's defaults)."""
    opennmt_version: int = 3
    beam_size: int = 5
    n_best: int = 1
    min_length: int = 0
    max_length: int = 250
    max_length_ratio: float = 1.25
    ratio: float = 0.0
    length_penalty: str = "avg"
    alpha: float = 1.0
    coverage_penalty: str = "none"
    beta: float = 0.0
    stepwise_penalty: bool = False
    block_ngram_repeat: int = 0
    ignore_when_blocking: tuple = ()
    replace_unk: bool = False
    phrase_table: str = ""
    ban_unk_token: bool = False
    random_sampling_topk: int = 0
    random_sampling_topp: float = 0.0
    random_sampling_temp: float = 1.0
    seed: int = -1
    batch_size: int = 30
    batch_type: str = "sents"
    per_sentence: bool = False
    # decode-time statements about the model, checked against it
    copy_attn: bool | None = field(default=None)

    @property
    def sampling(self) -> bool:
        """GreedySearch (greedy and random sampling) rather than BeamSearch."""
        if self.opennmt_version == 1:
            return self.beam_size == 1
        return self.random_sampling_topk != 0 or self.random_sampling_topp != 0


# what each release's onmt_translate defaults to, where it differs from 3.x
_RELEASE_DEFAULTS = {
    3: {},
    2: {"max_length": 100, "max_length_ratio": 0.0, "length_penalty": "none", "alpha": 0.0},
    1: {"max_length": 100, "max_length_ratio": 0.0, "length_penalty": "none", "alpha": 0.0,
        "random_sampling_topk": 1, "seed": 829},
}
# flags a release does not have
_NOT_IN = {2: {"max_length_ratio"}, 1: {"max_length_ratio", "ban_unk_token",
                                        "random_sampling_topp"}}
NAMES = tuple(f.name for f in fields(OpenNMTOptions))


def resolve(given: dict, version: int | None = None) -> OpenNMTOptions:
    """The options of one run: `given` (onmt_translate flag names) over the defaults of the
    release `version` (the model's, from config.json's opennmt.release; given's
    opennmt_version wins; 3 when neither says). ValueError/TypeError name the flag."""
    unknown = sorted(set(given) - set(NAMES))
    if unknown:
        raise TypeError(f"unknown OpenNMT-py option(s) {unknown}; onmt_translate's options "
                        f"are {sorted(NAMES)}")
    version = given.get("opennmt_version", version or 3)
    if version not in VERSIONS:
        raise ValueError(f"opennmt_version must be one of {list(VERSIONS)} (0.x checkpoints "
                         f"decode as 1.x), got {version!r}")
    for name in _NOT_IN.get(version, ()):
        if given.get(name):
            raise ValueError(f"-{name} is not an option of OpenNMT-py {version}.x")
    defaults = replace(OpenNMTOptions(), opennmt_version=version,
                       **_RELEASE_DEFAULTS[version])
    values = {k: v for k, v in given.items() if k != "opennmt_version"}
    if "ignore_when_blocking" in values:
        tokens = values["ignore_when_blocking"]
        if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
            raise TypeError("ignore_when_blocking must be a list of tokens")
        values["ignore_when_blocking"] = tuple(tokens)
    options = replace(defaults, **values)
    _check(options)
    return options


def _integer(options, name, low):
    value = getattr(options, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _number(options, name, low=None):
    value = getattr(options, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or (low is not None and value < low):
        raise ValueError(f"{name} must be a finite number" +
                         (f" >= {low}" if low is not None else "") + f", got {value!r}")


def _check(o: OpenNMTOptions) -> None:
    for name, low in (("beam_size", 1), ("n_best", 1), ("min_length", 0), ("max_length", 1),
                      ("block_ngram_repeat", 0), ("batch_size", 1)):
        _integer(o, name, low)
    for name, low in (("max_length_ratio", 0), ("ratio", None), ("alpha", None),
                      ("beta", None), ("random_sampling_topp", 0),
                      ("random_sampling_temp", 0)):
        _number(o, name, low)
    for name in ("random_sampling_topk", "seed"):
        value = getattr(o, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if o.seed < -1 or o.seed >= 2 ** 63:
        raise ValueError(f"seed must be -1 (random) or a non-negative integer, got {o.seed}")
    if o.random_sampling_topp > 1:
        raise ValueError(f"random_sampling_topp must be in [0, 1], got {o.random_sampling_topp}")
    for name, choices in (("length_penalty", LENGTH_PENALTIES),
                          ("coverage_penalty", COVERAGE_PENALTIES),
                          ("batch_type", BATCH_TYPES)):
        if getattr(o, name) not in choices:
            raise ValueError(f"{name} must be one of {list(choices)}, got {getattr(o, name)!r}")
    for name in ("stepwise_penalty", "replace_unk", "ban_unk_token", "per_sentence"):
        if not isinstance(getattr(o, name), bool):
            raise TypeError(f"{name} must be true or false")
    if not isinstance(o.phrase_table, str):
        raise TypeError("phrase_table must be a file name")
    if o.phrase_table and not o.replace_unk:
        raise ValueError("phrase_table is only read with replace_unk")
    if o.opennmt_version == 1 and o.beam_size != 1 and o.random_sampling_topk != 1:
        raise ValueError("Can either do beam search OR random sampling (OpenNMT-py 1.x: "
                         "random_sampling_topk needs beam_size 1)")
    if o.opennmt_version == 1 and o.sampling and o.block_ngram_repeat > 0:
        raise ValueError("block_ngram_repeat: OpenNMT-py 1.x's greedy search asserts "
                         "block_ngram_repeat == 0")
    paths = o.beam_size if o.sampling and o.opennmt_version >= 2 else \
        (1 if o.sampling else o.beam_size)
    if o.n_best > paths:
        raise ValueError(f"n_best ({o.n_best}) must not exceed the number of hypotheses the "
                         f"search keeps ({paths})")
