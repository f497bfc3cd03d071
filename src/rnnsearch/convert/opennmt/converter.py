"""OpenNMT-py checkpoints (.pt) of RNN encoder-decoders -> an rnnsearch model directory.

Reads checkpoints of OpenNMT-py 1.x, 2.x and 3.x (the `model`/`generator`/`vocab`/`opt`
dictionary written by `onmt_train`, or a 3.x `.pt` whose weights sit in a `.safetensors`
file beside it) without OpenNMT-py installed: the pickled options and vocabulary objects are
read by a restricted unpickler (common/checkpoint.py) that builds inert stand-ins for
OpenNMT/torchtext classes and refuses anything else. See docs/convert-opennmt.md for the
mapping and the options that are refused.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from ...errors import ModelError
from ...safe_files import require_regular_file
from ..common.checkpoint import StandIn, load_checkpoint, sanitize_vocabulary, to_numpy
from ..common.guard import input_errors
from ..common.tokenizer_options import add_tokenizer_arguments
from .transforms import carry_tokenizers  # noqa: F401 (tests call it here)

DESCRIPTION = "OpenNMT-py checkpoint (.pt, 1.x-3.x) of an rnn/brnn LSTM/GRU model"

_PAD, _UNK, _BOS, _EOS = "<blank>", "<unk>", "<s>", "</s>"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="OpenNMT-py checkpoint (.pt)")
    add_tokenizer_arguments(parser)


def _refuse(option: str, value, why: str = "") -> None:
    raise ModelError(f"OpenNMT-py option {option} = {value!r} is not supported"
                     + (f": {why}" if why else ""))


class _Options:
    """The checkpoint's `opt` with OpenNMT-py's defaults for options older versions lack."""

    def __init__(self, opt):
        if opt is None:
            raise ModelError("the checkpoint has no 'opt' (model options)")
        self._opt = opt

    def get(self, *names, default=None):
        for name in names:
            if hasattr(self._opt, name):
                return getattr(self._opt, name)
        return default


def _check_options(opt: _Options) -> dict:
    """Every option that changes inference, checked; returns the ones the mapping needs."""
    task = opt.get("model_task", "data_task", default="seq2seq")
    if task not in ("seq2seq", None):
        _refuse("model_task", task, "only sequence-to-sequence models")
    model_type = opt.get("model_type", default="text")
    if model_type not in ("text", None):
        _refuse("model_type", model_type, "only text models")
    encoder_type = opt.get("encoder_type", default="rnn")
    if encoder_type not in ("rnn", "brnn"):
        _refuse("encoder_type", encoder_type, "only 'rnn' and 'brnn' encoders")
    decoder_type = opt.get("decoder_type", default="rnn")
    if decoder_type != "rnn":
        _refuse("decoder_type", decoder_type, "only the 'rnn' decoder")
    rnn_type = opt.get("rnn_type", default="LSTM")
    if rnn_type not in ("LSTM", "GRU"):
        _refuse("rnn_type", rnn_type, "only LSTM and GRU cells")
    attention = opt.get("global_attention", default="general")
    if attention is None:
        attention = "none"
    if attention not in ("dot", "general", "mlp", "none"):
        _refuse("global_attention", attention)
    function = opt.get("global_attention_function", default="softmax")
    if function != "softmax":
        _refuse("global_attention_function", function, "only softmax attention")
    generator_function = opt.get("generator_function", default="softmax")
    if generator_function != "softmax":
        _refuse("generator_function", generator_function, "only a softmax output layer")
    if opt.get("position_encoding", default=False):
        _refuse("position_encoding", True)
    context_gate = opt.get("context_gate", default=None)
    if context_gate not in (None, "", "none"):
        _refuse("context_gate", context_gate)
    if opt.get("lora_layers", default=None) or opt.get("lora_embedding", default=False):
        _refuse("lora_layers", opt.get("lora_layers"), "merge the LoRA weights first")
    if opt.get("quant_layers", default=None) and opt.get("quant_type", default=""):
        _refuse("quant_type", opt.get("quant_type"))
    if (opt.get("n_src_feats", default=0) or 0) > 0:
        _refuse("n_src_feats", opt.get("n_src_feats"), "source word features")
    input_feed = bool(opt.get("input_feed", default=1))
    if attention == "none" and input_feed:
        _refuse("input_feed", 1, "input feeding without attention feeds the previous decoder "
                "output into the decoder, which the canonical 'none' decoder cannot do")
    copy = bool(opt.get("copy_attn", default=False))
    reuse = copy and bool(opt.get("reuse_copy_attn", default=False))
    copy_type = opt.get("copy_attn_type", default=None) or attention
    if copy:
        if attention == "none" or not input_feed:
            _refuse("copy_attn", True, "OpenNMT-py copies only with attention and input "
                    "feeding (its decoder without input feeding has no copy attention)")
        if not reuse and copy_type not in ("dot", "general", "mlp"):
            _refuse("copy_attn_type", copy_type)
    if opt.get("coverage_attn", default=False) and attention == "none":
        _refuse("coverage_attn", True, "coverage needs attention")
    return {"bidirectional": encoder_type == "brnn", "rnn_type": rnn_type,
            "attention": attention, "input_feed": input_feed,
            "bridge": bool(opt.get("bridge", default=False)),
            "copy": copy, "reuse_copy_attn": reuse, "copy_attn_type": copy_type,
            "coverage": bool(opt.get("coverage_attn", default=False))}


# ----- vocabularies


def _vocab_tokens(obj):
    """The token list of a vocabulary-like stand-in (torchtext Vocab / Field / TextMultiField,
    pyonmttok vocab dumped as a list), or None."""
    if isinstance(obj, (list, tuple)) and all(isinstance(t, str) for t in obj):
        return list(obj)
    if isinstance(obj, StandIn):
        for attribute in ("itos", "ids_to_tokens"):
            if isinstance(getattr(obj, attribute, None), list):
                return list(getattr(obj, attribute))
        if getattr(obj, "vocab", None) is not None:
            return _vocab_tokens(obj.vocab)
    return None


def _field_of(obj):
    """The torchtext Field of a TextMultiField-like stand-in (and the number of fields)."""
    if isinstance(obj, StandIn):
        fields = getattr(obj, "fields", None)
        if isinstance(fields, list) and fields:
            first = fields[0]
            field = first[1] if isinstance(first, tuple) and len(first) == 2 else first
            return field, len(fields)
        base = getattr(obj, "base_field", None)
        if base is not None:
            return base, 1
    return obj, 1


def _read_vocabularies(checkpoint) -> tuple[list[str], list[str], dict]:
    vocab = checkpoint.get("vocab")
    if vocab is None:
        raise ModelError("the checkpoint has no 'vocab'")
    if isinstance(vocab, list):  # OpenNMT-py <= 1.x: [(name, field or vocab), ...]
        vocab = {name: value for name, value in vocab if isinstance(name, str)}
    if not isinstance(vocab, dict) or "src" not in vocab or "tgt" not in vocab:
        raise ModelError("the checkpoint's 'vocab' has no 'src' and 'tgt' vocabularies")
    specials = {"pad": _PAD, "unk": _UNK, "bos": _BOS, "eos": _EOS}
    if "data_task" in vocab and vocab["data_task"] not in ("seq2seq", None):
        _refuse("data_task", vocab["data_task"], "only sequence-to-sequence models")
    if vocab.get("src_feats"):
        _refuse("src_feats", f"{len(vocab['src_feats'])} feature vocabularies",
                "source word features")
    if vocab.get("decoder_start_token") not in (None, _BOS):
        specials["bos"] = vocab["decoder_start_token"]
    tokens = {}
    for side in ("src", "tgt"):
        field, count = _field_of(vocab[side])
        if count > 1:
            _refuse("source/target features", f"{count - 1} feature field(s)",
                    "source word features")
        found = _vocab_tokens(field)
        if found is None:
            raise ModelError(f"cannot read the {side} vocabulary of the checkpoint "
                             f"({type(vocab[side]).__name__})")
        tokens[side] = found
        if side == "tgt" and isinstance(field, StandIn):  # torchtext Field: its specials
            for name, attribute in (("pad", "pad_token"), ("unk", "unk_token"),
                                    ("bos", "init_token"), ("eos", "eos_token")):
                value = getattr(field, attribute, None)
                if isinstance(value, str) and value:
                    specials[name] = value
    return (sanitize_vocabulary(tokens["src"], "source"),
            sanitize_vocabulary(tokens["tgt"], "target"), specials)


# ----- weights


class _Weights:
    """The state dict as float32 arrays; tracks which entries the mapping used."""

    def __init__(self, state: dict):
        self.arrays = {name: to_numpy(value) for name, value in state.items()
                       if hasattr(value, "detach")}
        self.used: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self.arrays

    def take(self, name: str) -> np.ndarray:
        if name not in self.arrays:
            raise ModelError(f"the checkpoint lacks the tensor '{name}'")
        self.used.add(name)
        return self.arrays[name]

    def take_optional(self, name: str):
        return self.take(name) if name in self.arrays else None

    def unused(self) -> list[str]:
        return sorted(set(self.arrays) - self.used)


def _state_dicts(checkpoint, path: str, copy: bool) -> dict:
    """model + generator weights, names as in the 3.x model (generator.weight, .bias; a copy
    generator's switch: generator.copy.weight, .bias)."""
    if "model" in checkpoint and checkpoint["model"] is not None:
        state = dict(checkpoint["model"])
        generator = checkpoint.get("generator") or {}
    else:  # 3.x with save_format safetensors: weights beside the .pt
        base = path[:-3] if path.endswith(".pt") else path
        weights = base + ".safetensors"
        if not os.path.isfile(weights):
            raise ModelError(f"{path} has no 'model' weights and {weights} does not exist")
        require_regular_file(weights, "weights file")
        try:
            from safetensors.torch import load_file
        except ImportError as e:
            raise ModelError(f"{weights}: reading OpenNMT-py's .safetensors weights needs "
                             "safetensors: pip install 'rnnsearch[torch]'") from e
        try:
            state = load_file(weights)
        except Exception as e:   # the safetensors package's own error types
            raise ModelError(f"{weights}: cannot read: {e}") from e
        generator = {k[len("generator."):]: v for k, v in state.items()
                     if k.startswith("generator.")}
        state = {k: v for k, v in state.items() if not k.startswith("generator.")}
    renamed = {}
    for name, value in generator.items():
        # 1.x/2.x: Sequential(Linear, Cast, LogSoftmax) -> "0.weight"; 3.x: Linear -> "weight";
        # a CopyGenerator: "linear.weight" and the switch "linear_copy.weight"
        short = name[2:] if name.startswith("0.") else name
        if copy:
            short = {"linear.weight": "weight", "linear.bias": "bias",
                     "linear_copy.weight": "copy.weight",
                     "linear_copy.bias": "copy.bias"}.get(name)
        if short not in ("weight", "bias", "copy.weight", "copy.bias"):
            _refuse("generator", name, "only a Linear + softmax generator, or OpenNMT-py's "
                    "CopyGenerator with copy_attn")
        renamed[f"generator.{short}"] = value
    if not renamed:
        raise ModelError("the checkpoint has no generator (output layer) weights")
    state.update(renamed)
    return state


def _rnn_layers(weights: _Weights, prefix: str, style: str) -> int:
    count = 0
    while weights.has(f"{prefix}.weight_ih_l{count}" if style == "rnn" else
                      f"{prefix}.layers.{count}.weight_ih"):
        count += 1
    return count


def _cell_of(rows: int, hidden: int, where: str) -> str:
    gates = rows // hidden
    if rows % hidden or gates not in (1, 3, 4):
        raise ModelError(f"{where}: weight rows {rows} do not fit hidden size {hidden}")
    return {4: "lstm", 3: "gru", 1: "rnn_tanh"}[gates]


def _copy_rnn(weights: _Weights, tensors: dict, source: str, target: str) -> None:
    for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        name = source.format(kind=kind)
        if kind.startswith("weight"):
            tensors[f"{target}.{kind}"] = weights.take(name)
        elif weights.has(name):
            tensors[f"{target}.{kind}"] = weights.take(name)


def _bridge_weights(weight: np.ndarray, bias: np.ndarray, layers: int, directions: int,
                    h: int) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    """OpenNMT-py's bridge as canonical per-decoder-layer dense weights: (bridge.from, [(W_l,
    b_l)]).

    OpenNMT reshapes the final states (index k = layer·D + direction) into rows of L states
    (row r holds states r·L … r·L+L−1), applies one Linear(L·h → L·h) + ReLU to every row
    and reads them back in the same order; decoder layer l then starts from states l·D …
    l·D+D−1 (brnn: concatenated). So W_l reads all L·D final states in (layer, direction)
    order (`all_layers`), with zeros outside the row each of its outputs comes from. When
    those rows hold only encoder layer l's own states (L = 1, or brnn with L = 2), W_l is
    cut down to those columns (`matching_layer`)."""
    total = layers * directions
    own_layer_only = True
    result = []
    for layer in range(layers):
        w = np.zeros((directions * h, total * h), np.float32)
        b = np.zeros(directions * h, np.float32)
        for i in range(directions):
            row, position = divmod(layer * directions + i, layers)  # where output i comes from
            out_rows = slice(i * h, (i + 1) * h)
            weight_rows = slice(position * h, (position + 1) * h)
            b[out_rows] = bias[weight_rows]
            for j in range(row * layers, (row + 1) * layers):  # the states in that row
                w[out_rows, j * h:(j + 1) * h] = \
                    weight[weight_rows, (j % layers) * h:(j % layers + 1) * h]
                own_layer_only &= j // directions == layer
        result.append((w, b))
    if not own_layer_only:
        return "all_layers", result
    width = directions * h
    return "matching_layer", [(np.ascontiguousarray(w[:, layer * width:(layer + 1) * width]), b)
                              for layer, (w, b) in enumerate(result)]


def opennmt_release(checkpoint) -> int:
    """The OpenNMT-py release that wrote the checkpoint, as far as its search rules go: 3
    (a vocabulary of token lists), 2 (torchtext fields, options with `transforms`), else 1
    (1.x, and 0.x, whose checkpoints 1.x reads and whose own beam search no longer runs)."""
    vocab = checkpoint.get("vocab")
    if isinstance(vocab, dict) and (isinstance(vocab.get("src"), list) or
                                    "decoder_start_token" in vocab):
        return 3
    if _Options(checkpoint.get("opt")).get("transforms", default=None) is not None:
        return 2
    return 1


@input_errors("OpenNMT-py converter")
def build(checkpoint, path: str = "<checkpoint>") -> tuple[dict, dict, list[str], list[str]]:
    """(config, tensors, source vocabulary, target vocabulary) of an OpenNMT-py checkpoint."""
    if not isinstance(checkpoint, dict):
        raise ModelError(f"{path}: not an OpenNMT-py checkpoint (expected a dict, got "
                         f"{type(checkpoint).__name__})")
    options = _check_options(_Options(checkpoint.get("opt")))
    source_vocab, target_vocab, specials = _read_vocabularies(checkpoint)
    weights = _Weights(_state_dicts(checkpoint, path, options["copy"]))

    tensors: dict[str, np.ndarray] = {}
    emb = "embeddings.make_embedding.emb_luts.0.weight"
    for name in list(weights.arrays):
        if ".make_embedding." in name and not name.endswith(emb):
            _refuse("embeddings", name, "word features, feature MLPs and position encodings")
    tensors["encoder.embedding.weight"] = weights.take(f"encoder.{emb}")
    tensors["decoder.embedding.weight"] = weights.take(f"decoder.{emb}")

    # encoder: nn.LSTM/GRU/RNN, batch_first or time-major (the names are the same)
    enc_layers = _rnn_layers(weights, "encoder.rnn", "rnn")
    if enc_layers == 0:
        raise ModelError("no encoder RNN weights (encoder.rnn.weight_ih_l0) in the checkpoint")
    bidirectional = weights.has("encoder.rnn.weight_ih_l0_reverse")
    if bidirectional != options["bidirectional"]:
        raise ModelError("the checkpoint's encoder_type and its encoder weights disagree "
                         "about bidirectionality")
    h = weights.arrays["encoder.rnn.weight_hh_l0"].shape[1]
    enc_cell = _cell_of(weights.arrays["encoder.rnn.weight_hh_l0"].shape[0], h, "encoder")
    directions = 2 if bidirectional else 1
    for layer in range(enc_layers):
        for d, suffix in (("forward", ""), ("backward", "_reverse"))[:directions]:
            _copy_rnn(weights, tensors, f"encoder.rnn.{{kind}}_l{layer}{suffix}",
                      f"encoder.layers.{layer}.{d}")

    # decoder RNN: StackedLSTM/StackedGRU cells (input feeding) or nn.LSTM/GRU/RNN
    feed = options["input_feed"]
    if feed:
        dec_layers = _rnn_layers(weights, "decoder.rnn", "cells")
        source = "decoder.rnn.layers.{layer}.{{kind}}"
        first = "decoder.rnn.layers.0.weight_hh"
    else:
        dec_layers = _rnn_layers(weights, "decoder.rnn", "rnn")
        source = "decoder.rnn.{{kind}}_l{layer}"
        first = "decoder.rnn.weight_hh_l0"
    if dec_layers == 0:
        raise ModelError(f"no decoder RNN weights ({first}) for input_feed = {int(feed)}")
    hd = weights.arrays[first].shape[1]
    dec_cell = _cell_of(weights.arrays[first].shape[0], hd, "decoder")
    for layer in range(dec_layers):
        _copy_rnn(weights, tensors, source.format(layer=layer), f"decoder.layers.{layer}")
    if dec_layers != enc_layers:
        raise ModelError(f"enc_layers = {enc_layers} and dec_layers = {dec_layers}: OpenNMT-py "
                         "starts each decoder layer from the matching encoder layer's state")
    if directions * h != hd:
        raise ModelError(f"encoder state width {directions * h} differs from the decoder's "
                         f"hidden size {hd}")

    # initial decoder state
    if options["bridge"]:
        states = [("hidden", 0)] + ([("cell", 1)] if enc_cell == "lstm" else [])
        for state, index in states:
            w = weights.take(f"encoder.bridge.{index}.weight")
            b = weights.take(f"encoder.bridge.{index}.bias")
            source, per_layer = _bridge_weights(w, b, enc_layers, directions, h)
            for layer, (lw, lb) in enumerate(per_layer):
                tensors[f"bridge.layers.{layer}.{state}.weight"] = lw
                tensors[f"bridge.layers.{layer}.{state}.bias"] = lb
        bridge = {"type": "dense", "from": source, "activation": "relu",
                  "lstm_cell": "bridged" if enc_cell == "lstm" else "zeros"}
    else:
        bridge = {"type": "last", "from": "matching_layer",
                  "lstm_cell": "bridged" if enc_cell == "lstm" else "zeros"}
    if dec_cell == "lstm" and enc_cell != "lstm":
        raise ModelError(f"an {enc_cell} encoder cannot start an LSTM decoder")

    # attention and the attentional ("linear_out") layer
    kind = options["attention"]
    decoder = {"embedding_size": int(tensors["decoder.embedding.weight"].shape[1]),
               "cell": dec_cell, "hidden_size": int(hd), "num_layers": dec_layers}
    tensors["decoder.output.weight"] = weights.take("generator.weight")
    generator_b = weights.take_optional("generator.bias")
    if generator_b is not None:
        tensors["decoder.output.bias"] = generator_b
    if kind == "none":
        attention = None
        decoder["type"] = "none"
    else:
        decoder.update(type="luong", input_feeding=feed)
        if kind == "dot":
            attention = {"score": "dot"}
        elif kind == "general":
            attention = {"score": "general"}
            # score = (W q)·h = q·(Wᵀ h)
            tensors["attention.key.weight"] = np.ascontiguousarray(
                weights.take("decoder.attn.linear_in.weight").T)
        else:  # mlp: vᵀ tanh(W_q q + b_q + U h)
            attention = {"score": "additive", "size": int(hd)}
            tensors["attention.query.weight"] = weights.take("decoder.attn.linear_query.weight")
            tensors["attention.query.bias"] = weights.take("decoder.attn.linear_query.bias")
            tensors["attention.key.weight"] = weights.take("decoder.attn.linear_context.weight")
            tensors["attention.v"] = weights.take("decoder.attn.v.weight").reshape(-1)
        # linear_out, input [c; q]: h~ = tanh(W [c; s]) for dot/general, W [c; s] + b
        # without tanh for mlp
        decoder.update(attentional_layer=True,
                       attentional_activation="identity" if kind == "mlp" else "tanh")
        tensors["decoder.attentional.weight"] = weights.take("decoder.attn.linear_out.weight")
        linear_out_b = weights.take_optional("decoder.attn.linear_out.bias")
        if linear_out_b is not None:
            tensors["decoder.attentional.bias"] = linear_out_b

    copy = None
    if options["copy"]:
        copy = _copy_generator(weights, tensors, options)
    if options["coverage"]:
        # coverage_attn: no OpenNMT-py release passes the coverage to the attention when
        # translating (docs/convert-opennmt.md), so linear_cover changes nothing
        weights.take("decoder.attn.linear_cover.weight")

    leftover = weights.unused()
    if leftover:
        raise ModelError(f"the checkpoint has weights this converter does not map: {leftover} "
                         "(an unsupported option?)")
    config = {
        "format": "rnnsearch-model", "format_version": 1,
        "special_tokens": specials,
        "source": {"tokenizer": "whitespace"},
        "target": {"tokenizer": "whitespace"},
        "encoder": {"embedding_size": int(tensors["encoder.embedding.weight"].shape[1]),
                    "cell": enc_cell, "hidden_size": int(h), "num_layers": enc_layers,
                    "bidirectional": bidirectional, "merge": "concat"},
        "bridge": bridge,
        "attention": attention,
        "decoder": decoder,
        "copy": copy,
        "opennmt": {"release": opennmt_release(checkpoint)},
    }
    return config, tensors, source_vocab, target_vocab


def _copy_generator(weights: _Weights, tensors: dict, options: dict) -> dict:
    """The CopyGenerator's switch and, unless reuse_copy_attn, the copy attention
    (decoder.copy_attn, a GlobalAttention queried with the attentional vector; its
    linear_out is computed by OpenNMT-py and thrown away)."""
    tensors["copy.gate.weight"] = weights.take("generator.copy.weight")
    tensors["copy.gate.bias"] = weights.take("generator.copy.bias")
    if options["reuse_copy_attn"]:
        return {"reuse_attention": True}
    kind, prefix = options["copy_attn_type"], "decoder.copy_attn"
    weights.take(f"{prefix}.linear_out.weight")
    weights.take_optional(f"{prefix}.linear_out.bias")
    if kind == "dot":
        return {"score": "dot"}
    if kind == "general":
        tensors["copy.attention.key.weight"] = np.ascontiguousarray(
            weights.take(f"{prefix}.linear_in.weight").T)
        return {"score": "general"}
    query = weights.take(f"{prefix}.linear_query.weight")
    tensors["copy.attention.query.weight"] = query
    tensors["copy.attention.query.bias"] = weights.take(f"{prefix}.linear_query.bias")
    tensors["copy.attention.key.weight"] = weights.take(f"{prefix}.linear_context.weight")
    tensors["copy.attention.v"] = weights.take(f"{prefix}.v.weight").reshape(-1)
    return {"score": "additive", "size": int(query.shape[0])}


@input_errors("OpenNMT-py converter")
def convert(args: argparse.Namespace) -> None:
    from ...model_dir import write_model_dir
    checkpoint = load_checkpoint(args.checkpoint)
    config, tensors, source_vocab, target_vocab = build(checkpoint, args.checkpoint)
    files = carry_tokenizers(config, _Options(checkpoint.get("opt")), args,
                             folder=os.path.dirname(os.path.abspath(args.checkpoint)))
    write_model_dir(args.output, config, tensors, source_vocab, target_vocab, files=files)
