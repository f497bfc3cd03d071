"""JoeyNMT recurrent models (a .ckpt, its config.yaml and vocabulary files) -> an rnnsearch
model directory.

JoeyNMT need not be installed: the checkpoint is read with torch.load (weights only), the
configuration with PyYAML. See docs/convert-joeynmt.md for the mapping and the options
that are refused.
"""
from __future__ import annotations

import argparse
import os
import pickle

import numpy as np

from ...errors import ModelError
from ...limits import MAX_VOCAB_BYTES
from ...safe_files import is_inside, load_yaml, read_text, require_regular_file
from ..common.checkpoint import load_checkpoint, sanitize_vocabulary, to_numpy
from ..common.guard import input_errors
from ..common.read_check import checked_in_child
from ..common.tokenizer_options import add_tokenizer_arguments
from .workflow import carry_tokenizers, decoding_defaults

DESCRIPTION = "JoeyNMT recurrent model (model directory, or .ckpt + config.yaml)"

_CHECKPOINT_NAMES = ("best.ckpt", "latest.ckpt")
_SPACE_ESCAPE = "\u2581"  # JoeyNMT's char level writes a space as '▁'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="JoeyNMT model directory (config.yaml, best.ckpt, "
                        "src_vocab.txt, trg_vocab.txt) or a .ckpt file")
    parser.add_argument("--config", default=None,
                        help="the training config.yaml (default: beside the checkpoint)")
    parser.add_argument("--src-vocab", default=None, help="source vocabulary file "
                        "(default: data.src.voc_file, else src_vocab.txt beside the config)")
    parser.add_argument("--trg-vocab", default=None, help="target vocabulary file "
                        "(default: data.trg.voc_file, else trg_vocab.txt beside the config)")
    add_tokenizer_arguments(parser)


def _refuse(option: str, value, why: str = "") -> None:
    raise ModelError(f"JoeyNMT option {option} = {value!r} is not supported"
                     + (f": {why}" if why else ""))


def _locate(args) -> tuple[str, str]:
    """(checkpoint, config.yaml)"""
    path = args.model
    if not os.path.exists(path):
        raise ModelError(f"JoeyNMT model not found: {path} (give the model directory or "
                         "its .ckpt file)")
    if os.path.isdir(path):
        for name in _CHECKPOINT_NAMES:
            if os.path.isfile(os.path.join(path, name)):
                checkpoint = os.path.join(path, name)
                break
        else:
            candidates = sorted((f for f in os.listdir(path) if f.endswith(".ckpt")),
                                key=lambda f: (len(f), f))
            if not candidates:
                raise ModelError(f"{path}: no .ckpt checkpoint in the directory")
            checkpoint = os.path.join(path, candidates[-1])
        directory = path
    else:
        checkpoint, directory = path, os.path.dirname(os.path.abspath(path))
    config = getattr(args, "config", None) or os.path.join(directory, "config.yaml")
    if not os.path.isfile(config):
        raise ModelError(f"JoeyNMT config not found: {config} (pass --config)")
    return checkpoint, config


def _read_config(path: str) -> dict:
    config = load_yaml(path, "JoeyNMT config")
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise ModelError(f"{path}: not a JoeyNMT config (no 'model' section)")
    for section in ("data", "training", "testing"):
        if config.get(section) is not None and not isinstance(config[section], dict):
            raise ModelError(f"{path}: '{section}' must be a mapping")
    return config


def _section(parent: dict, key: str, where: str) -> dict:
    """A sub-mapping of the config (missing or null: empty); ModelError for anything else."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ModelError(f"JoeyNMT config: {where}.{key} must be a mapping, got "
                         f"{type(value).__name__}")
    return value


def _special_symbols(data: dict) -> dict:
    """JoeyNMT's defaults (joeynmt.config._check_special_symbols)."""
    given = _section(data, "special_symbols", "data")
    specials = {"unk_token": "<unk>", "unk_id": 0, "pad_token": "<pad>", "pad_id": 1,
                "bos_token": "<s>", "bos_id": 2, "eos_token": "</s>", "eos_id": 3,
                "sep_token": None, "sep_id": None, "lang_tags": []}
    specials.update(given)
    for name in ("unk", "pad", "bos", "eos"):
        if not isinstance(specials[f"{name}_token"], str) or not specials[f"{name}_token"]:
            raise ModelError(f"JoeyNMT config: data.special_symbols.{name}_token must be a "
                             "non-empty string")
        if type(specials[f"{name}_id"]) is not int:
            raise ModelError(f"JoeyNMT config: data.special_symbols.{name}_id must be an "
                             "integer")
    if specials["sep_token"] is not None and not isinstance(specials["sep_token"], str):
        raise ModelError("JoeyNMT config: data.special_symbols.sep_token must be a string")
    if not isinstance(specials["lang_tags"] or [], list) or \
            not all(isinstance(t, str) for t in specials["lang_tags"] or []):
        raise ModelError("JoeyNMT config: data.special_symbols.lang_tags must be a list of "
                         "strings")
    return specials


def _read_vocabulary(path: str, specials: dict, side: str) -> list[str]:
    """As joeynmt.vocabulary.Vocabulary: specials (+ sep, lang tags) first, then the file's
    lines, first occurrence wins."""
    lines = read_text(path, f"{side} vocabulary", MAX_VOCAB_BYTES).splitlines()
    head = [specials["unk_token"], specials["pad_token"], specials["bos_token"],
            specials["eos_token"]]
    if specials["sep_token"]:
        head.append(specials["sep_token"])
    tokens, seen = [], set()
    for token in head + list(specials["lang_tags"] or []) + lines:
        if token not in seen:
            seen.add(token)
            tokens.append(token)
    for name in ("unk", "pad", "bos", "eos"):
        if tokens.index(specials[f"{name}_token"]) != specials[f"{name}_id"]:
            raise ModelError(f"{path}: {specials[f'{name}_token']!r} is not at id "
                             f"{specials[f'{name}_id']} (special_symbols.{name}_id)")
    return tokens


def _vocab_path(given, data_side: dict, config_path: str, default_name: str) -> str:
    """The vocabulary given on the command line; else data.<side>.voc_file if it names a
    file inside the model folder (the config's folder; nothing outside it is read on the
    config's say-so); else <default_name> beside the config."""
    if given:
        return given
    folder = os.path.dirname(os.path.abspath(config_path))
    configured = data_side.get("voc_file")
    if configured is not None and not isinstance(configured, str):
        raise ModelError(f"JoeyNMT config: voc_file = {configured!r}; expected a path")
    if configured:
        for candidate in (configured, os.path.basename(configured)):
            path = os.path.join(folder, candidate)
            try:
                if not os.path.isabs(candidate) and is_inside(folder, path) and \
                        os.path.isfile(path):
                    return path
            except ValueError:   # NUL in the name
                break
    beside = os.path.join(folder, default_name)
    if os.path.isfile(beside):
        return beside
    where = f"voc_file {configured!r} is not a file inside {folder}, nor is {default_name}" \
        if configured else f"{beside} not found"
    raise ModelError(f"vocabulary not found: {where} (pass --{default_name[:3]}-vocab)")


@checked_in_child("checkpoint")
def _load_state(path: str) -> dict:
    import torch
    require_regular_file(path, "checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise ModelError(f"checkpoint not found: {path}") from e
    except (pickle.UnpicklingError, RuntimeError):  # pickles more than tensors
        checkpoint = load_checkpoint(path)
    except Exception as e:   # torch's reader on a corrupt file: many kinds of errors
        raise ModelError(f"{path}: cannot read the checkpoint: {type(e).__name__}: {e}") from e
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model_state"), dict):
        raise ModelError(f"{path}: not a JoeyNMT checkpoint (no 'model_state')")
    return {str(name): to_numpy(value, f"{path}: model_state['{name}']")
            for name, value in checkpoint["model_state"].items()}


class _Weights:
    def __init__(self, arrays: dict):
        self.arrays = arrays
        self.used: set[str] = set()

    def take(self, name: str) -> np.ndarray:
        if name not in self.arrays:
            raise ModelError(f"the checkpoint lacks the tensor '{name}'")
        self.used.add(name)
        return self.arrays[name]

    def has(self, name: str) -> bool:
        return name in self.arrays


def _cell(rnn_type, weights: "_Weights", prefix: str, where: str) -> str:
    """JoeyNMT builds nn.GRU for rnn_type 'gru' and nn.LSTM for anything else."""
    cell = "gru" if rnn_type == "gru" else "lstm"
    w = weights.arrays.get(f"{prefix}.weight_hh_l0")
    if w is not None and w.shape[0] != {"gru": 3, "lstm": 4}[cell] * w.shape[1]:
        raise ModelError(f"{where}.rnn_type = {rnn_type!r} (an {cell.upper()}) does not fit "
                         f"the checkpoint's {prefix}.weight_hh_l0 of shape {list(w.shape)}")
    return cell


@input_errors("JoeyNMT converter")
def build(config: dict, state: dict, source_vocab: list[str], target_vocab: list[str],
          specials: dict) -> tuple[dict, dict]:
    """(rnnsearch config, tensors) for a JoeyNMT recurrent model."""
    model = config["model"]
    data = _section(config, "data", "config")
    enc_cfg, dec_cfg = _section(model, "encoder", "model"), _section(model, "decoder", "model")
    if enc_cfg.get("type", "recurrent") != "recurrent":
        _refuse("model.encoder.type", enc_cfg.get("type"), "only recurrent encoders")
    if dec_cfg.get("type", "transformer") != "recurrent":
        _refuse("model.decoder.type", dec_cfg.get("type", "transformer"),
                "only recurrent decoders")
    if not enc_cfg.get("bidirectional", True):
        _refuse("model.encoder.bidirectional", False, "JoeyNMT's recurrent encoder reads the "
                "backward direction's final state, so it only runs bidirectional")
    activation = dec_cfg.get("activation", "tanh")
    if activation != "tanh":
        _refuse("model.decoder.activation", activation, "the attentional layer and bridge are "
                "tanh in the canonical format (and JoeyNMT 2.x only runs tanh here)")
    attention_kind = dec_cfg.get("attention", "bahdanau")
    if attention_kind not in ("bahdanau", "luong"):
        _refuse("model.decoder.attention", attention_kind)
    init_hidden = dec_cfg.get("init_hidden", "bridge")
    input_feeding = bool(dec_cfg.get("input_feeding", True))
    weights = _Weights(state)
    enc_cell = _cell(enc_cfg.get("rnn_type", "gru"), weights, "encoder.rnn", "model.encoder")
    dec_cell = _cell(dec_cfg.get("rnn_type", "gru"), weights, "decoder.rnn", "model.decoder")
    tensors: dict[str, np.ndarray] = {}
    for name, section, target in (("src_embed", enc_cfg, "encoder"),
                                  ("trg_embed", dec_cfg, "decoder")):
        table = weights.take(f"{name}.lut.weight")
        if _section(section, "embeddings", f"model.{target}").get("scale", False):
            # JoeyNMT multiplies looked-up embeddings by sqrt(dim): fold it into the table
            table = (table.astype(np.float64) * np.sqrt(table.shape[1])).astype(np.float32)
        tensors[f"{target}.embedding.weight"] = table

    # encoder: nn.GRU / nn.LSTM, bidirectional
    layers = 0
    while weights.has(f"encoder.rnn.weight_ih_l{layers}"):
        layers += 1
    if layers == 0 or not weights.has("encoder.rnn.weight_ih_l0_reverse"):
        raise ModelError("the checkpoint lacks a bidirectional encoder.rnn")
    h = weights.arrays["encoder.rnn.weight_hh_l0"].shape[1]
    for layer in range(layers):
        for direction, suffix in (("forward", ""), ("backward", "_reverse")):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                name = f"encoder.rnn.{kind}_l{layer}{suffix}"
                if kind.startswith("weight") or weights.has(name):
                    tensors[f"encoder.layers.{layer}.{direction}.{kind}"] = weights.take(name)
    memory = 2 * h

    # decoder RNN
    dec_layers = 0
    while weights.has(f"decoder.rnn.weight_ih_l{dec_layers}"):
        dec_layers += 1
    if dec_layers == 0:
        raise ModelError("the checkpoint lacks decoder.rnn weights")
    hd = weights.arrays["decoder.rnn.weight_hh_l0"].shape[1]
    for layer in range(dec_layers):
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            name = f"decoder.rnn.{kind}_l{layer}"
            if kind.startswith("weight") or weights.has(name):
                tensors[f"decoder.layers.{layer}.{kind}"] = weights.take(name)

    # initial state: the top encoder layer's final [fwd; bwd], the same for every layer;
    # an LSTM decoder's cell starts equal to its hidden state
    lstm_cell = "copy_hidden" if dec_cell == "lstm" else "zeros"
    if init_hidden == "bridge":
        w = weights.take("decoder.bridge_layer.weight")
        b = weights.take("decoder.bridge_layer.bias")
        for layer in range(dec_layers):
            tensors[f"bridge.layers.{layer}.hidden.weight"] = w
            tensors[f"bridge.layers.{layer}.hidden.bias"] = b
        bridge = {"type": "dense", "from": "top_layer", "activation": "tanh",
                  "lstm_cell": lstm_cell}
    elif init_hidden == "last":
        if memory == hd:
            bridge = {"type": "last", "from": "top_layer", "lstm_cell": lstm_cell}
        elif memory == 2 * hd:
            # JoeyNMT keeps the forward half: an exact selection [I 0] as a dense bridge
            select = np.zeros((hd, memory), np.float32)
            select[:, :hd] = np.eye(hd, dtype=np.float32)
            for layer in range(dec_layers):
                tensors[f"bridge.layers.{layer}.hidden.weight"] = select
            bridge = {"type": "dense", "from": "top_layer", "activation": "identity",
                      "lstm_cell": lstm_cell}
        else:
            raise ModelError(f"init_hidden 'last' needs the decoder hidden size ({hd}) to be "
                             f"the encoder's output size ({memory}) or half of it")
    else:  # JoeyNMT: anything else ("zero") starts from zeros
        bridge = {"type": "zeros"}

    # attention (queried with the decoder's new top-layer state, as Luong does)
    if attention_kind == "bahdanau":
        attention = {"score": "additive", "size": int(hd)}
        tensors["attention.key.weight"] = weights.take("decoder.attention.key_layer.weight")
        tensors["attention.query.weight"] = weights.take("decoder.attention.query_layer.weight")
        tensors["attention.v"] = weights.take("decoder.attention.energy_layer.weight").reshape(-1)
    else:
        attention = {"score": "general"}
        tensors["attention.key.weight"] = weights.take("decoder.attention.key_layer.weight")
    # attentional layer: tanh(W [s; c] + b) in JoeyNMT, canonical input order [c; s]
    w = weights.take("decoder.att_vector_layer.weight")
    tensors["decoder.attentional.weight"] = np.ascontiguousarray(
        np.concatenate([w[:, hd:], w[:, :hd]], axis=1))
    if weights.has("decoder.att_vector_layer.bias"):
        tensors["decoder.attentional.bias"] = weights.take("decoder.att_vector_layer.bias")
    tensors["decoder.output.weight"] = weights.take("decoder.output_layer.weight")

    leftover = sorted(set(weights.arrays) - weights.used)
    if leftover:
        raise ModelError(f"the checkpoint has weights this converter does not map: {leftover}")

    src, trg = _section(data, "src", "data"), _section(data, "trg", "data")
    chars = {side: (section.get("level", "word") == "char") for side, section in
             (("src", src), ("trg", trg))}
    result = {
        "format": "rnnsearch-model", "format_version": 1,
        "special_tokens": {"pad": specials["pad_token"], "unk": specials["unk_token"],
                           "bos": specials["bos_token"], "eos": specials["eos_token"]},
        "source": {"tokenizer": "chars" if chars["src"] else "whitespace",
                   "lowercase": bool(src.get("lowercase", False)), "add_eos": True},
        # JoeyNMT's searches set these to -inf after the log-softmax
        "target": {"tokenizer": "chars" if chars["trg"] else "whitespace",
                   "suppress_tokens": [t for t in [specials["bos_token"], specials["pad_token"],
                                                   specials["sep_token"]]
                                       + list(specials["lang_tags"] or []) if t]},
        "encoder": {"embedding_size": int(tensors["encoder.embedding.weight"].shape[1]),
                    "cell": enc_cell, "hidden_size": int(h), "num_layers": layers,
                    "bidirectional": True, "merge": "concat"},
        "bridge": bridge,
        "attention": attention,
        "decoder": {"type": "luong", "embedding_size":
                    int(tensors["decoder.embedding.weight"].shape[1]),
                    "cell": dec_cell, "hidden_size": int(hd), "num_layers": dec_layers,
                    "input_feeding": input_feeding, "attentional_layer": True},
    }
    return result, tensors


def _unescape_spaces(tokens: list[str]) -> list[str]:
    """Char level: JoeyNMT's '▁' is a space; canonical 'chars' uses ' ' itself."""
    if _SPACE_ESCAPE in tokens and " " not in tokens:
        return [" " if t == _SPACE_ESCAPE else t for t in tokens]
    return tokens


@input_errors("JoeyNMT converter")
def convert(args: argparse.Namespace) -> None:
    from ...model_dir import write_model_dir
    checkpoint, config_path = _locate(args)
    config = _read_config(config_path)
    data = _section(config, "data", "config")
    specials = _special_symbols(data)
    vocabs = {}
    for side, default in (("src", "src_vocab.txt"), ("trg", "trg_vocab.txt")):
        path = _vocab_path(getattr(args, f"{side}_vocab", None), _section(data, side, "data"),
                           config_path, default)
        vocabs[side] = _read_vocabulary(path, specials, side)
    state = _load_state(checkpoint)
    result, tensors = build(config, state, vocabs["src"], vocabs["trg"], specials)
    names = {"src": "source", "trg": "target"}
    for side in ("src", "trg"):
        if _section(data, side, "data").get("level", "word") == "char":
            vocabs[side] = _unescape_spaces(vocabs[side])
        vocabs[side] = sanitize_vocabulary(vocabs[side], names[side])
    files = carry_tokenizers(result, data, config_path, args)
    result["decoding"] = decoding_defaults(config.get("testing"), result["special_tokens"]["unk"])
    write_model_dir(args.output, result, tensors, vocabs["src"], vocabs["trg"], files=files)
