"""The model directory's schema: config validation with defaults, and the tensor table.

This file is the single source of truth for docs/model-format.md: `normalize_config`
checks every key and fills defaults, `expected_tensors` says which tensors a config needs
and with which shapes. Converters, the exporter and the loader all go through it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

from . import attention_options, source_options, stateful_attention
from . import model_spec_deep as deep
from .config_merge import REQUIRED, merge_over_defaults
from .config_merge import short as _short
from .errors import ModelError
from .limits import (MAX_ABS_PENALTY, MAX_BEAM, MAX_DECODING_LENGTH, MAX_LAYERS,
                     MAX_SOURCE_LENGTH, MAX_WIDTH)
from .safe_files import check_depth, check_relative_name

FORMAT_NAME = "rnnsearch-model"
FORMAT_VERSION = 1

CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}

_SCHEMA = {
    "format": REQUIRED,
    "format_version": REQUIRED,
    "special_tokens": {"pad": "<pad>", "unk": "<unk>", "bos": "<s>", "eos": "</s>"},
    "source": {"vocabulary": "source_vocabulary.txt", "tokenizer": "whitespace",
               "tokenizer_model": None, "tokenizer_guessed": False, "lowercase": False,
               "add_bos": False, "add_eos": False, "max_length": 1024,
               "pad_to_length": None, "padding": "post", "per_word": False,
               # source_options.py: token ids, one-hot vectors or feature frames
               "kind": "ids", "feature_size": None},
    "target": {"vocabulary": "target_vocabulary.txt", "tokenizer": "whitespace",
               "tokenizer_model": None, "tokenizer_guessed": False,
               "word_separator": " | ", "suppress_tokens": []},
    # embedding_size, cell and hidden_size are required as source_options.py says (feature
    # sources have no embeddings, an encoder of 0 layers no cells)
    "encoder": {"embedding_size": None, "cell": None, "hidden_size": None,
                "num_layers": 1, "bidirectional": False, "merge": "concat",
                "residual": False, "gru_reset_after": True,
                "input_projection": None, "subsample": None, "subsample_mode": "concat",
                "projection": None, "pooling": None,
                # model_spec_deep: Nematus / Marian encoders
                "stacking": "layerwise", "cell_depth": 1, "layer_norm": "none",
                "layer_norm_eps": 1e-5},
    "bridge": {"type": "zeros", "from": "matching_layer", "activation": "tanh",
               "lstm_cell": "zeros",
               "layer_norm": False, "layer_norm_eps": 1e-5},
    "attention": {"type": "global", "score": REQUIRED, "size": None,
                  "query_projection": True, "key_projection": True,
                  "score_activation": "tanh",
                  # attention_options.py: hard, gate, key_value and the per-type sub-objects
                  "hard": False, "gate": False, "gate_per_dimension": False,
                  "key_value": None, "local": None, "mocha": None,
                  # stateful_attention.py: scaling and the stateful types' sub-objects
                  "scaling": 1.0, "location": None, "coverage": None, "forward": None,
                  "multi_head": None, "context_size": None,
                  "layer_norm": False, "layer_norm_eps": 1e-5},
    "decoder": {"type": REQUIRED, "embedding_size": REQUIRED, "cell": REQUIRED,
                "hidden_size": REQUIRED, "num_layers": 1, "residual": False,
                "gru_reset_after": True, "input_feeding": False, "attentional_layer": True,
                "attentional_size": None, "attentional_activation": "tanh",
                "readout": "none", "readout_size": None,
                "readout_inputs": ["state", "context", "embedding"],
                "attention_query": "top_layer", "feed": "attentional",
                # model_spec_deep: Nematus / Marian decoders
                "start_embedding": "bos", "cell_depth": 1, "base_cell_depth": 2,
                "layer_norm": "none", "layer_norm_eps": 1e-5, "readout_layer_norm": False,
                "readout_layer_norm_eps": 1e-5},
    # OpenNMT-py's copy generator (pointer-generator); null for a plain softmax output
    "copy": {"reuse_attention": False, "score": None, "size": None},
    # the OpenNMT-py release whose checkpoint this was (search="opennmt" follows its rules
    # and defaults); null for other models
    "opennmt": {"release": REQUIRED},
    # the translator's defaults for this model (a caller's own options override them)
    "decoding": {"beam_size": 5, "num_hypotheses": 1, "length_penalty": 0.0,
                 "coverage_penalty": 0.0, "normalize_scores": False,
                 "min_decoding_length": 0, "max_decoding_length": 256,
                 "suppress_tokens": [], "replace_unk": False,
                 # model_spec_deep: Marian's search
                 "shrinking_beam": False, "length_normalization": 0.0, "word_penalty": 0.0,
                 "max_length_factor": 0.0},
}
# sections that may be left out entirely (every key has a default)
_OPTIONAL_SECTIONS = ("special_tokens", "source", "target", "bridge", "decoding")
TOKENIZERS = ("whitespace", "chars", "sentencepiece", "bpe")
TOKENIZERS_WITH_FILES = ("sentencepiece", "bpe")

_CHOICES = {
    ("source", "tokenizer"): TOKENIZERS,
    ("source", "padding"): ("post", "pre"),
    ("target", "tokenizer"): TOKENIZERS,
    ("encoder", "merge"): ("concat", "sum"),
    ("bridge", "type"): ("zeros", "last", "dense", "mean", "pooling"),
    ("bridge", "from"): ("matching_layer", "top_layer", "all_layers"),
    ("bridge", "activation"): ("tanh", "relu", "identity"),
    ("bridge", "lstm_cell"): ("zeros", "bridged", "copy_hidden"),
    ("attention", "type"): ("global", "local", "monotonic", "mocha")
    + stateful_attention.STATEFUL_TYPES,
    ("attention", "score"): ("dot", "scaled_dot", "general", "additive", "tanh_dot"),
    ("attention", "score_activation"): ("tanh", "relu"),
    ("decoder", "type"): ("bahdanau", "luong", "none", "conditional"),
    ("encoder", "stacking"): deep.STACKINGS,
    ("encoder", "layer_norm"): deep.LAYER_NORMS,
    ("decoder", "layer_norm"): deep.LAYER_NORMS,
    ("decoder", "start_embedding"): deep.START_EMBEDDINGS,
    ("decoder", "cell"): CELLS,
    ("decoder", "readout"): ("none", "linear", "tanh", "maxout"),
    ("decoder", "attentional_activation"): ("tanh", "identity"),
    ("decoder", "attention_query"): ("top_layer", "first_layer"),
    ("decoder", "feed"): ("attentional", "context"),
    ("copy", "score"): (None, "dot", "general", "additive"),
    ("opennmt", "release"): (1, 2, 3),
}
# positive integers and their upper bounds (the engine's limits, rnnsearch.limits); the
# encoder's num_layers (0 for a features encoder) is checked by source_options
_POSITIVE_INTS = {("decoder", "num_layers"): MAX_LAYERS,
                  ("source", "max_length"): MAX_SOURCE_LENGTH,
                  ("source", "pad_to_length"): MAX_SOURCE_LENGTH,
                  ("decoding", "beam_size"): MAX_BEAM, ("decoding", "num_hypotheses"): MAX_BEAM,
                  ("decoding", "max_decoding_length"): MAX_DECODING_LENGTH,
                  ("encoder", "cell_depth"): deep.MAX_CELL_DEPTH,
                  ("decoder", "cell_depth"): deep.MAX_CELL_DEPTH,
                  ("decoder", "base_cell_depth"): deep.MAX_CELL_DEPTH} | {
    (section, key): MAX_WIDTH for section, key in (
        ("encoder", "embedding_size"), ("encoder", "hidden_size"), ("decoder", "embedding_size"),
        ("decoder", "hidden_size"), ("decoder", "attentional_size"),
        ("decoder", "readout_size"), ("attention", "size"), ("attention", "context_size"),
        ("copy", "size"), ("source", "feature_size"))}
_FILE_NAMES = {("source", "vocabulary"), ("target", "vocabulary")}
_BOOLS = {("source", "lowercase"), ("source", "per_word"), ("source", "add_bos"), ("source", "add_eos"),
          ("encoder", "bidirectional"), ("encoder", "residual"), ("encoder", "gru_reset_after"),
          ("decoder", "residual"), ("decoder", "gru_reset_after"), ("decoder", "input_feeding"),
          ("decoder", "attentional_layer"), ("attention", "query_projection"),
          ("attention", "key_projection"), ("copy", "reuse_attention"),
          ("source", "tokenizer_guessed"),
          ("target", "tokenizer_guessed"), ("decoding", "normalize_scores"),
          ("decoding", "replace_unk"), ("attention", "hard"), ("attention", "gate"),
          ("attention", "gate_per_dimension"),
          ("bridge", "layer_norm"), ("attention", "layer_norm"),
          ("decoder", "readout_layer_norm"), ("decoding", "shrinking_beam")}
_FINITE_NUMBERS = {("decoding", "length_penalty"), ("decoding", "coverage_penalty"),
                   ("decoding", "length_normalization"), ("decoding", "word_penalty"),
                   ("decoding", "max_length_factor")}
READOUT_INPUTS = ("state", "context", "embedding")


def _check_value(section: str, key: str, value):
    where = f"config.json: {section}.{key}"
    if (section, key) in _CHOICES and value not in _CHOICES[(section, key)]:
        raise ModelError(f"{where} = {_short(value)}; expected one of "
                         f"{list(_CHOICES[(section, key)])}")
    if (section, key) in _BOOLS and not isinstance(value, bool):
        raise ModelError(f"{where} = {_short(value)}; expected true or false")
    if (section, key) == ("target", "word_separator") and not isinstance(value, str):
        raise ModelError(f"{where} = {_short(value)}; expected a string")
    if (section, key) in (("target", "suppress_tokens"), ("decoding", "suppress_tokens")) and not (
            isinstance(value, list) and all(isinstance(t, str) and t for t in value)):
        raise ModelError(f"{where} = {_short(value)}; expected a list of token strings")
    if (section, key) in _POSITIVE_INTS and value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
            or value > _POSITIVE_INTS[(section, key)]):
        raise ModelError(f"{where} = {_short(value)}; expected a positive integer of at most "
                         f"{_POSITIVE_INTS[(section, key)]}")
    if (section, key) in _FILE_NAMES and not (
            (section, key) == ("source", "vocabulary") and value is None):  # features
        check_relative_name(value, where)
    if (section, key) == ("decoding", "min_decoding_length") and (
            isinstance(value, bool) or not isinstance(value, int) or
            not 0 <= value <= MAX_DECODING_LENGTH):
        raise ModelError(f"{where} = {_short(value)}; expected an integer from 0 to "
                         f"{MAX_DECODING_LENGTH}")
    if (section, key) in _FINITE_NUMBERS and (
            isinstance(value, bool) or not isinstance(value, (int, float))
            or not -MAX_ABS_PENALTY <= value <= MAX_ABS_PENALTY):   # False for NaN
        raise ModelError(f"{where} = {_short(value)}; expected a finite number from "
                         f"{-MAX_ABS_PENALTY} to {MAX_ABS_PENALTY}")
    if key == "tokenizer_model" and value is not None and not _is_plain_file_name(value):
        raise ModelError(f"{where} = {_short(value)}; expected the name of a file inside the "
                         "model directory (no directories)")


def _is_plain_file_name(value) -> bool:
    """A file name that stays inside the model directory."""
    return isinstance(value, str) and value not in ("", ".", "..") and "/" not in value \
        and "\\" not in value and "\0" not in value


def _check_text(value, where: str) -> None:
    """Strings of the config end up in files and on terminals: valid UTF-8 only."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as e:
                raise ModelError(f"{where}: {_short(item)} is not valid Unicode text") from e
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def normalize_config(config: dict) -> dict:
    """Return a copy with defaults filled in; ModelError naming the field on any fault."""
    if not isinstance(config, dict):
        raise ModelError("config.json: expected a JSON object")
    check_depth(config, "config.json")
    _check_text(config, "config.json")
    config = copy.deepcopy(config)
    unknown = set(config) - set(_SCHEMA)
    if unknown:
        raise ModelError(f"config.json: unknown key(s) {sorted(map(_short, unknown))}")
    if config.get("format") != FORMAT_NAME:
        raise ModelError(f"config.json: format = {config.get('format')!r}; "
                         f"expected {FORMAT_NAME!r}")
    if type(config.get("format_version")) is not int or \
            config.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"config.json: format_version = {config.get('format_version')!r}; "
                         f"this rnnsearch reads version {FORMAT_VERSION}")
    is_attentionless = isinstance(config.get("decoder"), dict) and \
        config["decoder"].get("type") == "none"
    for section, fields in _SCHEMA.items():
        if not isinstance(fields, dict):
            continue
        if section in ("copy", "opennmt") and config.get(section) is None:
            config[section] = None  # optional sections
            continue
        if section == "attention" and is_attentionless:
            if config.get("attention") is not None:
                raise ModelError("config.json: attention must be null for decoder.type 'none'")
            config["attention"] = None
            continue
        given = config.get(section, {} if section in _OPTIONAL_SECTIONS else None)
        if not isinstance(given, dict):
            raise ModelError(f"config.json: section '{section}' is missing or not an object")
        config[section] = merge_over_defaults(
            section, given, fields, lambda key, value, section=section:
            _check_value(section, key, value))
    for name, token in config["special_tokens"].items():
        if not isinstance(token, str) or not token:
            raise ModelError(f"config.json: special_tokens.{name} must be a non-empty string")
    _check_consistency(config)
    return config


def _check_tokenizers_and_decoding(config: dict) -> None:
    for side in ("source", "target"):
        section = config[side]
        needs_file = section["tokenizer"] in TOKENIZERS_WITH_FILES
        if needs_file and section["tokenizer_model"] is None:
            raise ModelError(f"config.json: {side}.tokenizer '{section['tokenizer']}' needs "
                             f"{side}.tokenizer_model (its file in the model directory)")
        if not needs_file and section["tokenizer_model"] is not None:
            raise ModelError(f"config.json: {side}.tokenizer_model is set but "
                             f"{side}.tokenizer '{section['tokenizer']}' reads no file")
    decoding = config["decoding"]
    if decoding["num_hypotheses"] > decoding["beam_size"]:
        raise ModelError(f"config.json: decoding.num_hypotheses ({decoding['num_hypotheses']}) "
                         f"exceeds decoding.beam_size ({decoding['beam_size']})")
    if decoding["min_decoding_length"] > decoding["max_decoding_length"]:
        raise ModelError("config.json: decoding.min_decoding_length exceeds "
                         "decoding.max_decoding_length")
    for key in ("length_penalty", "coverage_penalty", "length_normalization", "word_penalty",
                "max_length_factor"):
        decoding[key] = float(decoding[key])
    if decoding["max_length_factor"] < 0:
        raise ModelError(f"config.json: decoding.max_length_factor = "
                         f"{decoding['max_length_factor']}; expected a number >= 0")


def _check_consistency(config: dict) -> None:
    source_options.normalize_source(config)
    _check_tokenizers_and_decoding(config)
    _normalize_options(config)
    dims = Dimensions.of(config)
    src = config["source"]
    if src["pad_to_length"] is not None and src["pad_to_length"] > src["max_length"]:
        raise ModelError(f"config.json: source.pad_to_length ({src['pad_to_length']}) exceeds "
                         f"source.max_length ({src['max_length']})")
    enc, bridge, dec, att = (config["encoder"], config["bridge"], config["decoder"],
                             config["attention"])
    if bridge["type"] in ("last", "dense") and bridge["from"] == "matching_layer" \
            and enc["num_layers"] != dec["num_layers"]:
        raise ModelError("config.json: bridge.from = 'matching_layer' needs encoder.num_layers "
                         f"({enc['num_layers']}) = decoder.num_layers ({dec['num_layers']})")
    if bridge["type"] in ("last", "dense") and not enc["num_layers"]:
        raise ModelError(f"config.json: bridge.type {bridge['type']!r} reads the encoder "
                         "layers' final states; an encoder of 0 layers has none")
    if bridge["type"] == "pooling" and enc["pooling"] is None:
        raise ModelError("config.json: bridge.type 'pooling' needs encoder.pooling")
    if enc["pooling"] is not None and config["source"]["kind"] == "features":
        raise ModelError("config.json: encoder.pooling embeds token sources; source.kind "
                         "'features' models have none")
    if bridge["from"] == "all_layers" and bridge["type"] != "dense":
        raise ModelError(f"config.json: bridge.from = 'all_layers' needs bridge.type 'dense', "
                         f"got {bridge['type']!r}")
    if bridge["type"] == "last" and dims.encoder_final_width != dec["hidden_size"]:
        raise ModelError(f"config.json: bridge.type 'last' needs the encoder's merged final state "
                         f"width ({dims.encoder_final_width}) = decoder.hidden_size "
                         f"({dec['hidden_size']})")
    if dec["feed"] == "context" and not (dec["type"] == "luong" and dec["input_feeding"]):
        raise ModelError("config.json: decoder.feed 'context' needs a luong decoder with "
                         "input_feeding")
    if dec["type"] == "luong":
        if dec["input_feeding"] and dec["feed"] == "attentional" and \
                not dec["attentional_layer"]:
            raise ModelError("config.json: decoder.input_feeding needs decoder.attentional_layer")
    if dec["attentional_activation"] != "tanh" and not (
            dec["type"] == "luong" and dec["attentional_layer"]):
        raise ModelError(f"config.json: decoder.attentional_activation = "
                         f"{dec['attentional_activation']!r} needs a luong decoder with "
                         "attentional_layer")
    if dec["type"] in ("bahdanau", "conditional"):
        inputs = dec["readout_inputs"]
        if not isinstance(inputs, list) or not inputs or \
                not all(isinstance(i, str) and i in READOUT_INPUTS for i in inputs) \
                or len(set(inputs)) != len(inputs):
            raise ModelError(f"config.json: decoder.readout_inputs = {inputs!r}; expected a "
                             f"non-empty list of distinct items of {list(READOUT_INPUTS)}")
        dec["readout_inputs"] = [i for i in READOUT_INPUTS if i in inputs]
        if dec["readout"] != "none" and dec["readout_size"] is None:
            raise ModelError("config.json: decoder.readout_size is required for readout "
                             f"'{dec['readout']}'")
        if dec["readout"] == "maxout" and dec["readout_size"] % 2:
            raise ModelError("config.json: decoder.readout_size must be even for maxout")
    if att is not None:
        if att["score"] in ("dot", "scaled_dot") and dims.key_input_width != dec["hidden_size"]:
            raise ModelError(f"config.json: attention.score '{att['score']}' needs the memory "
                             f"(key) width ({dims.key_input_width}) = decoder.hidden_size "
                             f"({dec['hidden_size']})")
        if att["score_activation"] != "tanh" and att["score"] != "additive":
            raise ModelError(f"config.json: attention.score_activation applies to additive "
                             f"scores, not {att['score']!r}")
        if att["score"] == "additive":
            if att["query_projection"] or att["key_projection"]:
                if att["size"] is None:
                    raise ModelError("config.json: attention.size is required for additive "
                                     "attention with projections")
            widths = {"query": att["size"] if att["query_projection"] else dec["hidden_size"],
                      "key": att["size"] if att["key_projection"] else dims.key_input_width}
            if widths["query"] != widths["key"]:
                raise ModelError(f"config.json: additive attention without projections needs "
                                 f"equal widths, got query {widths['query']} and key "
                                 f"{widths['key']}")
    elif dec["type"] != "none":
        raise ModelError(f"config.json: decoder.type '{dec['type']}' needs an attention section")
    _check_copy(config, dims)
    deep.check(config)


def _check_copy(config: dict, dims: "Dimensions") -> None:
    copy = config["copy"]
    if copy is None:
        return
    if config["attention"] is None:
        raise ModelError("config.json: copy needs a decoder with attention")
    if config["source"]["kind"] != "ids":
        raise ModelError(f"config.json: copy copies source tokens, so it needs source.kind "
                         f"'ids', not {config['source']['kind']!r}")
    if copy["reuse_attention"]:
        if copy["score"] is not None or copy["size"] is not None:
            raise ModelError("config.json: copy.score and copy.size are for a copy attention "
                             "of its own; leave them out with copy.reuse_attention")
        return
    if copy["score"] is None:
        raise ModelError("config.json: copy.score is required unless copy.reuse_attention")
    if copy["score"] == "dot" and dims.output_input_width != dims.memory_width:
        raise ModelError(f"config.json: copy.score 'dot' needs the output layer's input width "
                         f"({dims.output_input_width}) = the memory width "
                         f"({dims.memory_width})")
    if copy["score"] == "additive" and copy["size"] is None:
        raise ModelError("config.json: copy.size is required for an additive copy attention")


def _normalize_options(config: dict) -> None:
    """The option objects of attention_options.py and stateful_attention.py: checked,
    defaults filled."""
    enc = config["encoder"]
    memory = source_options.memory_width(config)
    attention_options.normalize_pooling(enc, memory)
    if config["attention"] is not None:
        attention_options.normalize_attention(config["attention"], memory,
                                              config["source"]["max_length"])
        stateful_attention.normalize_attention(config["attention"])


@dataclass(frozen=True)
class Dimensions:
    """Derived widths (names follow docs/model-format.md)."""
    encoder_width: int        # D_e: output width of every encoder layer
    encoder_final_width: int  # merged final state width of one encoder layer
    memory_width: int         # D_m
    attention_width: int      # A (additive), H_d (general), D_m (dot)
    attentional_width: int    # D_a
    readout_input_width: int  # I_r
    output_input_width: int   # I_o
    bridge_input_width: int   # F: what a dense bridge reads
    context_width: int = 0    # D_c: the context the decoder reads (attention.context_size,
                              # else the attention's: the values' width)
    feed_width: int = 0       # what luong input feeding feeds back (D_a, or D_c)
    key_input_width: int = 0  # what the scores read of a position (key_value.split or D_m)
    pooled_width: int = 0     # P: encoder.pooling's summary, rows x D_m

    @staticmethod
    def of(config: dict) -> "Dimensions":
        enc, dec, att = config["encoder"], config["decoder"], config["attention"]
        # a dense bridge reads one layer's final states, or all layers', directions concatenated
        bridge_in = (enc["hidden_size"] or 0) * (2 if enc["bidirectional"] else 1) * (
            enc["num_layers"] if config["bridge"]["from"] == "all_layers" else 1)
        merged = source_options.rnn_width(enc)
        memory = source_options.memory_width(config)
        hd = dec["hidden_size"]
        key_in = attention_options.key_input_width(att, memory)
        context = attention_options.context_width(att, memory)
        attn_width = key_in
        if att is not None and att["score"] == "general":
            attn_width = hd
        elif att is not None and att["score"] == "additive":
            attn_width = att["size"] if att["key_projection"] else key_in
        d_a = dec["attentional_size"] or hd
        if att is not None and att["context_size"] is not None:
            context = att["context_size"]
        widths = {"state": hd, "context": context, "embedding": dec["embedding_size"]}
        readout_in = sum(widths[i] for i in dec["readout_inputs"]
                         if isinstance(i, str) and i in widths) \
            if isinstance(dec["readout_inputs"], list) else 0
        if dec["type"] == "luong":
            out_in = d_a if dec["attentional_layer"] else context + hd
        elif dec["type"] in ("bahdanau", "conditional"):
            rs = dec["readout_size"]
            out_in = {"none": readout_in, "maxout": (rs or 0) // 2}.get(dec["readout"], rs)
        else:
            out_in = hd
        return Dimensions(merged, merged, memory, attn_width, d_a, readout_in, out_in,
                          bridge_in, context, context if dec["feed"] == "context" else d_a,
                          key_in, attention_options.pooled_width(enc, memory))


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    optional: bool = False


def _rnn_tensors(prefix: str, cell: str, hidden: int, input_width: int) -> dict:
    g = GATES[cell] * hidden
    return {f"{prefix}.weight_ih": TensorSpec((g, input_width)),
            f"{prefix}.weight_hh": TensorSpec((g, hidden)),
            f"{prefix}.bias_ih": TensorSpec((g,), True),
            f"{prefix}.bias_hh": TensorSpec((g,), True)}


def _specs(pairs: dict) -> dict:
    """model_spec_deep's (shape, optional) pairs as TensorSpecs."""
    return {name: TensorSpec(shape, optional) for name, (shape, optional) in pairs.items()}


def _linear(prefix: str, out: int, inp: int) -> dict:
    return {f"{prefix}.weight": TensorSpec((out, inp)), f"{prefix}.bias": TensorSpec((out,), True)}


def _option_tensors(specs: dict) -> dict:
    return {name: TensorSpec(shape, optional) for name, (shape, optional) in specs.items()}


def expected_tensors(config: dict, source_vocab_size: int, target_vocab_size: int
                     ) -> dict[str, TensorSpec]:
    """Every tensor the (normalized) config may have, with its shape and whether optional."""
    enc, bridge, att, dec = (config["encoder"], config["bridge"], config["attention"],
                             config["decoder"])
    dims = Dimensions.of(config)
    hd = dec["hidden_size"]
    specs = {name: TensorSpec(shape, optional) for name, (shape, optional) in
             source_options.tensors(config, source_vocab_size).items()}
    specs["decoder.embedding.weight"] = TensorSpec((target_vocab_size, dec["embedding_size"]))
    directions = ("forward", "backward") if enc["bidirectional"] else ("forward",)
    for layer, width in enumerate(source_options.layer_input_widths(config)):
        for direction in directions:
            specs.update(_rnn_tensors(f"encoder.layers.{layer}.{direction}", enc["cell"],
                                      enc["hidden_size"], width))
            specs.update(_specs(deep.cell_tensors(f"encoder.layers.{layer}.{direction}", enc)))

    specs.update(_option_tensors(attention_options.pooling_tensors(enc, dims.memory_width)))
    if bridge["type"] in ("dense", "mean", "pooling"):
        width = {"mean": dims.memory_width, "pooling": dims.pooled_width}.get(
            bridge["type"], dims.bridge_input_width)
        states = ["hidden"]
        if dec["cell"] == "lstm" and bridge["lstm_cell"] == "bridged":
            states.append("cell")
        for layer in range(dec["num_layers"]):
            for state in states:
                specs.update(_linear(f"bridge.layers.{layer}.{state}", hd, width))

    if att is not None:
        if att["score"] == "dot":
            specs["attention.scale"] = TensorSpec((1,), True)
        elif att["score"] == "general":
            specs.update(_linear("attention.key", hd, dims.key_input_width))
        elif att["score"] == "additive":
            if att["key_projection"]:
                specs.update(_linear("attention.key", att["size"], dims.key_input_width))
            if att["query_projection"]:
                specs.update(_linear("attention.query", att["size"], hd))
            specs["attention.v"] = TensorSpec((dims.attention_width,), True)
        if att["context_size"] is not None:
            specs.update(_linear("attention.context", att["context_size"],
                                 attention_options.context_width(att, dims.memory_width)))
        specs.update(_option_tensors(attention_options.attention_tensors(
            att, hd, dims.memory_width)))
        specs.update(_option_tensors(stateful_attention.attention_tensors(
            att, hd, dims.memory_width, dec["embedding_size"])))

    first_input = dec["embedding_size"]
    if dec["type"] == "bahdanau":
        first_input += dims.context_width
    elif dec["type"] == "luong" and dec["input_feeding"]:
        first_input += dims.feed_width
    conditional = dec["type"] == "conditional"
    for layer in range(dec["num_layers"]):
        specs.update(_rnn_tensors(f"decoder.layers.{layer}", dec["cell"], hd,
                                  first_input if layer == 0 else hd))
        specs.update(_specs(deep.cell_tensors(  # layer 0 of a conditional decoder: below
            f"decoder.layers.{layer}", dec,
            dec["cell_depth"] if conditional and layer == 0 else 1)))
    if conditional:
        specs.update(_specs(deep.conditional_tensors(dec, dims.context_width)))
    specs.update(_specs(deep.norm_tensors(config, dec["readout_size"])))
    if dec["type"] == "luong" and dec["attentional_layer"]:
        specs.update(_linear("decoder.attentional", dims.attentional_width,
                             dims.context_width + hd))
    if dec["type"] in ("bahdanau", "conditional") and dec["readout"] != "none":
        specs.update(_linear("decoder.readout", dec["readout_size"], dims.readout_input_width))
    specs.update(_linear("decoder.output", target_vocab_size, dims.output_input_width))
    copy = config["copy"]
    if copy is not None:
        # the switch and the copy attention read the vector the output layer reads
        specs.update(_linear("copy.gate", 1, dims.output_input_width))
        if copy["score"] == "general":
            specs.update(_linear("copy.attention.key", dims.output_input_width,
                                 dims.memory_width))
        elif copy["score"] == "additive":
            specs.update(_linear("copy.attention.key", copy["size"], dims.memory_width))
            specs.update(_linear("copy.attention.query", copy["size"],
                                 dims.output_input_width))
            specs["copy.attention.v"] = TensorSpec((copy["size"],), True)
    return specs


# int8 weights (docs/model-format.md, "int8 weights"): a matrix may be stored as int8 rows
# with a float32 companion `<name>_scale` of per-row scales. The names are part of the schema
# (check_tensors reads them), so they live here; rnnsearch.quantize writes such tensors.
SCALE_SUFFIX = "_scale"


def is_quantizable(name: str, shape: tuple) -> bool:
    """Matrices of linear maps; embeddings are looked up, not multiplied, so stay float (as
    do the layer normalisations' per-part gains and biases)."""
    return len(shape) == 2 and ".embedding." not in name and "_norm." not in name


def scale_names(tensors: dict) -> set[str]:
    """The `<name>_scale` companions of the int8 matrices among `tensors`."""
    import numpy as np
    return {name + SCALE_SUFFIX for name, value in tensors.items() if value.dtype == np.int8}


def _check_scale(tensors: dict, name: str, rows: int, where: str) -> None:
    """An int8 matrix needs `<name>_scale`: float32 [rows], finite and positive."""
    import numpy as np
    scale = tensors.get(name + SCALE_SUFFIX)
    if scale is None:
        raise ModelError(f"{where}: int8 tensor '{name}' has no '{name}_scale' "
                         f"(float32 [{rows}])")
    if scale.dtype != np.float32 or tuple(scale.shape) != (rows,):
        raise ModelError(f"{where}: tensor '{name}_scale' has dtype {scale.dtype} and shape "
                         f"{list(scale.shape)}; expected float32 [{rows}]")
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise ModelError(f"{where}: tensor '{name}_scale' has non-positive or non-finite "
                         "scales")


def check_finite(tensors: dict, where: str) -> None:
    """ModelError naming the first float tensor holding NaN or inf (for conversions; the
    engine checks a loaded model's weights itself, while laying them out)."""
    import numpy as np
    for name in sorted(tensors):
        value = tensors[name]
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ModelError(f"{where}: tensor '{name}' holds NaN or infinite values")


def check_tensors(config: dict, tensors: dict, source_vocab_size: int,
                  target_vocab_size: int, where: str = "model.safetensors") -> None:
    """ModelError naming the first missing, extra, mis-shaped or non-float32 tensor."""
    import numpy as np
    specs = expected_tensors(config, source_vocab_size, target_vocab_size)
    extra = sorted(set(tensors) - set(specs) - scale_names(tensors))
    if extra:
        raise ModelError(f"{where}: unexpected tensor(s) for this config: {extra}")
    for name, spec in specs.items():
        if name not in tensors:
            if spec.optional:
                continue
            raise ModelError(f"{where}: missing tensor '{name}' (shape {list(spec.shape)})")
        array = tensors[name]
        if array.dtype == np.int8 and is_quantizable(name, spec.shape):
            _check_scale(tensors, name, spec.shape[0], where)
        elif array.dtype != np.float32:
            quantizable = " (or int8 with per-row scales)" if is_quantizable(name, spec.shape) \
                else ""
            raise ModelError(f"{where}: tensor '{name}' has dtype {array.dtype}; "
                             f"expected float32{quantizable}")
        if tuple(array.shape) != spec.shape:
            hint = ""
            if name == "encoder.embedding.weight" or name == "decoder.embedding.weight" or \
                    name.startswith("decoder.output"):
                hint = " (vocabulary size and weights disagree?)"
            raise ModelError(f"{where}: tensor '{name}' has shape {list(array.shape)}; "
                             f"expected {list(spec.shape)}{hint}")
