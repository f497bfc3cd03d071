"""Marian's model options (model.yml): the RNN architectures rnnsearch converts, with
Marian's defaults, and a refusal naming the option for anything else."""
from __future__ import annotations

from ...errors import ModelError

TYPES = ("s2s", "nematus", "amun")
CELLS = ("gru", "gru-nematus")
ENCODER_TYPES = ("bidirectional", "alternating")

# the options that shape an s2s/nematus/amun model, with Marian's defaults
DEFAULTS = {
    "type": "amun", "dim-vocabs": None, "dim-emb": 512, "dim-rnn": 1024,
    "enc-type": "bidirectional", "enc-cell": "gru", "enc-cell-depth": 1, "enc-depth": 1,
    "dec-cell": "gru", "dec-cell-base-depth": 2, "dec-cell-high-depth": 1, "dec-depth": 1,
    "skip": False, "layer-normalization": False,
    "tied-embeddings": False, "tied-embeddings-src": False, "tied-embeddings-all": False,
    "output-omit-bias": False,
}
# options of other model types or of training only, stored in every model.yml
_IGNORED_PREFIXES = ("transformer-", "bert-")
_IGNORED = {"version", "separator-symbol", "factors-combine", "lemma-dependency",
            "ulr-trainable-transformation", "input-types"}
# options that change the model when set: refused unless off
_MUST_BE_OFF = {"factors-dim-emb": "factored vocabularies", "lemma-dim-emb":
                "factored vocabularies", "ulr": "universal lexical representations",
                "ulr-dim-emb": "universal lexical representations",
                "right-left": "right-to-left models (reversed output)"}


def _refuse(option: str, value, why: str) -> ModelError:
    return ModelError(f"Marian option --{option} {value!r} is not supported: {why}")


def _positive(options: dict, key: str) -> int:
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _refuse(key, value, "expected a positive integer")
    return value


def normalize(raw: dict, where: str) -> dict:
    """Marian's options with defaults filled in, checked: only what rnnsearch reproduces."""
    options = dict(DEFAULTS)
    unknown = []
    for key, value in raw.items():
        if key in DEFAULTS:
            options[key] = value
        elif key in _MUST_BE_OFF:
            if value not in (False, 0, None, "", []):
                raise _refuse(key, value, _MUST_BE_OFF[key])
        elif key.startswith(_IGNORED_PREFIXES) or key in _IGNORED:
            if key == "input-types" and value not in (None, [], ""):
                raise _refuse(key, value, "only plain token inputs are converted")
        elif value not in (False, 0, None, "", []):
            unknown.append(key)
    model_type = options["type"]
    if model_type not in TYPES:
        raise ModelError(f"{where}: Marian model type {model_type!r} (--type) is not supported: "
                         f"rnnsearch converts Marian's RNN models (--type {', '.join(TYPES)})")
    if unknown:
        raise ModelError(f"{where}: Marian option(s) {', '.join('--' + k for k in unknown)} not "
                         "supported (unknown to the RNN converter)")
    for key in ("dim-emb", "dim-rnn", "enc-cell-depth", "enc-depth", "dec-cell-base-depth",
                "dec-cell-high-depth", "dec-depth"):
        _positive(options, key)
    for key in ("skip", "layer-normalization", "tied-embeddings", "tied-embeddings-src",
                "tied-embeddings-all", "output-omit-bias"):
        if not isinstance(options[key], bool):
            raise _refuse(key, options[key], "expected true or false")
    vocabs = options["dim-vocabs"]
    if not (isinstance(vocabs, list) and len(vocabs) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in vocabs)):
        raise _refuse("dim-vocabs", vocabs, "expected the sizes of a source and a target "
                      "vocabulary")
    for key in ("enc-cell", "dec-cell"):
        if options[key] not in CELLS:
            raise _refuse(key, options[key], f"rnnsearch converts {' and '.join(CELLS)} cells")
    if options["enc-type"] not in ENCODER_TYPES:
        raise _refuse("enc-type", options["enc-type"],
                      f"rnnsearch converts {' and '.join(ENCODER_TYPES)} encoders")
    _check_type(options)
    return options


def _check_type(options: dict) -> None:
    """What Marian itself rejects or cannot load for each type."""
    model_type = options["type"]
    if (options["tied-embeddings-src"] or options["tied-embeddings-all"]) and \
            options["dim-vocabs"][0] != options["dim-vocabs"][1]:
        raise _refuse("tied-embeddings-src", True, "source and target vocabularies differ in "
                      "size")
    if options["dec-cell"] == "gru-nematus" and options["dec-depth"] > 1 and \
            options["dec-cell-high-depth"] > 1:
        raise _refuse("dec-cell-high-depth", options["dec-cell-high-depth"],
                      "Marian's gru-nematus cells cannot run the transition cells of decoder "
                      "layers above the first (it crashes on such models)")
    if model_type == "nematus":
        for key, allowed in (("enc-type", "bidirectional"), ("enc-cell", "gru-nematus"),
                             ("dec-cell", "gru-nematus")):
            if options[key] != allowed:
                raise _refuse(key, options[key], f"--type nematus needs {allowed}")
        if options["dec-cell-high-depth"] > 1:
            raise _refuse("dec-cell-high-depth", options["dec-cell-high-depth"],
                          "--type nematus has none")
        for key in ("tied-embeddings-src", "tied-embeddings-all"):
            if options[key]:
                raise _refuse(key, True, "Marian itself cannot load --type nematus models with "
                              "shared source embeddings (it renames Wemb to encoder_Wemb and "
                              "aborts)")
    if model_type == "amun":
        for key, limit in (("enc-depth", 1), ("enc-cell-depth", 1), ("dec-depth", 1),
                           ("dec-cell-high-depth", 1)):
            if options[key] > limit:
                raise _refuse(key, options[key], "--type amun has one")
        if options["dec-cell-base-depth"] != 2 or options["skip"]:
            raise _refuse("dec-cell-base-depth" if not options["skip"] else "skip",
                          options["skip"] or options["dec-cell-base-depth"],
                          "--type amun has the two-cell decoder without skip connections")
        for key in ("enc-cell", "dec-cell"):
            if options[key] != "gru":
                raise _refuse(key, options[key], "--type amun has gru cells")
