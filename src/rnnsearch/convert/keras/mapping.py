"""Keras (2 or 3) functional encoder-decoders -> rnnsearch model directory.

Reads the TRAINING model (two inputs: source ids and target ids; one output: target
probabilities or logits), finds the encoder, bridge, attention and decoder by following the
graph from the output back to the inputs, and maps them onto the canonical "luong" decoder
(update, then attend; no input feeding) or, without attention, the "none" decoder.
Neither Keras nor TensorFlow is needed: files are read with h5py (files.py).
See docs/convert-keras.md for the supported layers and patterns.
"""
from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import dataclass, field

import numpy as np

from ...errors import ModelError
from ..common import layouts
from .files import Call, KerasModel, Layer, Ref, load_keras

DESCRIPTION = ("Keras functional seq2seq with attention (.keras, legacy .h5, or .weights.h5 "
               "with --keras-config)")

RNN_CLASSES = ("LSTM", "GRU")
ATTENTION_CLASSES = ("Attention", "AdditiveAttention")
PASSTHROUGH = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout",
               "AlphaDropout", "ActivityRegularization", "Identity")
SUPPORTED = set(("InputLayer", "Embedding", "Bidirectional", "Concatenate", "Add", "Dense",
                 "TimeDistributed", "Activation", "Softmax", "NotEqual")
                + RNN_CLASSES + ATTENTION_CLASSES + PASSTHROUGH)
# NotEqual: the mask op Keras 3 records for Embedding(mask_zero=True); it only feeds masks
SUPPORTED_TEXT = ("Embedding, LSTM, GRU, Bidirectional(LSTM|GRU), Attention, "
                  "AdditiveAttention, Concatenate, Dense, TimeDistributed(Dense), "
                  "Activation/Softmax, Dropout")

AUTO_MARKERS = (("<start>", "<end>"), ("<sos>", "<eos>"), ("<s>", "</s>"), ("<bos>", "<eos>"),
                ("[start]", "[end]"), ("startseq", "endseq"), ("sos", "eos"), ("\t", "\n"))


# ======================================================================== CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("keras")
    g.add_argument("input", help="the TRAINING model: model.keras, a legacy model .h5, or "
                                 "a .weights.h5 file with --keras-config")
    g.add_argument("--keras-config", help="model.to_json() output (for a weights-only file)")
    g.add_argument("--source-vocab", required=True,
                   help="source vocabulary: Keras Tokenizer JSON (tokenizer.to_json()), a "
                        "JSON word_index {token: id} or token list, or a text file with one "
                        "token per line (line number = id)")
    g.add_argument("--target-vocab", required=True, help="target vocabulary (same formats)")
    g.add_argument("--source-tokenizer", choices=("whitespace", "chars"),
                   help="how strings are split (default: chars for a char_level Tokenizer, "
                        "else whitespace)")
    g.add_argument("--target-tokenizer", choices=("whitespace", "chars"),
                   help="how output tokens are joined (default: as the target Tokenizer)")
    g.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None,
                   help="lower-case source strings (default: the source Tokenizer's 'lower')")
    g.add_argument("--bos", help="the target start token as it appears in the vocabulary "
                                 "(default: detected, e.g. <start>, <sos>, startseq, \\t)")
    g.add_argument("--eos", help="the target end token (default: detected)")
    g.add_argument("--source-add-bos", action="store_true",
                   help="the model was trained with the start token before every source")
    g.add_argument("--source-add-eos", action="store_true",
                   help="the model was trained with the end token after every source")
    g.add_argument("--pad-token", default="<pad>",
                   help="name given to the padding entry (id 0) (default: %(default)s)")
    g.add_argument("--max-source-length", type=int,
                   help="longest source accepted (default: the Input's fixed length, else 1024)")
    g.add_argument("--pad-to-length", type=int,
                   help="for a source Embedding with mask_zero=False: the length sources "
                        "were padded to (default: the Input's fixed length)")
    g.add_argument("--source-padding", choices=("post", "pre"), default="post",
                   help="where that padding went (pad_sequences(padding=...); Keras' own "
                        "default is 'pre') (default: %(default)s)")
    g.add_argument("--ignore-padding", action="store_true",
                   help="convert a mask_zero=False model anyway; sources are then NOT padded, "
                        "so results differ from Keras on padded input")


def convert(args: argparse.Namespace) -> None:
    convert_keras(args.input, args.output, args.source_vocab, args.target_vocab,
                  keras_config=args.keras_config, source_tokenizer=args.source_tokenizer,
                  target_tokenizer=args.target_tokenizer, lowercase=args.lowercase,
                  bos=args.bos, eos=args.eos, source_add_bos=args.source_add_bos,
                  source_add_eos=args.source_add_eos, pad_token=args.pad_token,
                  max_source_length=args.max_source_length, pad_to_length=args.pad_to_length,
                  source_padding=args.source_padding, ignore_padding=args.ignore_padding)


def convert_keras(model_path: str, output: str, source_vocab: str, target_vocab: str, *,
                  keras_config: str | None = None, source_tokenizer: str | None = None,
                  target_tokenizer: str | None = None, lowercase: bool | None = None,
                  bos: str | None = None, eos: str | None = None,
                  source_add_bos: bool = False, source_add_eos: bool = False,
                  pad_token: str = "<pad>", max_source_length: int | None = None,
                  pad_to_length: int | None = None, source_padding: str = "post",
                  ignore_padding: bool = False) -> dict:
    """Convert; returns the config written. ModelError on anything unsupported."""
    from ...model_dir import write_model_dir

    graph = load_keras(model_path, keras_config)
    plan = _Mapper(graph).map()
    config, tensors = _build(plan)

    src_info = load_vocabulary(source_vocab)
    tgt_info = load_vocabulary(target_vocab)
    src_tokens, tgt_tokens, specials = _assemble_vocabularies(
        plan, src_info, tgt_info, bos, eos, source_add_bos, source_add_eos, pad_token)

    source = {"tokenizer": source_tokenizer or ("chars" if src_info.char_level else "whitespace"),
              "lowercase": src_info.lower if lowercase is None else bool(lowercase),
              "add_bos": bool(source_add_bos), "add_eos": bool(source_add_eos)}
    if max_source_length is not None:
        source["max_length"] = int(max_source_length)
    elif plan.source_length is not None:
        source["max_length"] = plan.source_length
    if src_info.filters and source["tokenizer"] == "whitespace":
        warnings.warn(f"{source_vocab}: the Keras Tokenizer removes the characters "
                      f"{src_info.filters!r} before splitting; rnnsearch's whitespace tokenizer "
                      "does not, so remove them from the text yourself (or words carrying them "
                      "become unknown)", stacklevel=2)
    _padding(plan, source, pad_to_length, source_padding, ignore_padding)
    target = {"tokenizer": target_tokenizer or ("chars" if tgt_info.char_level
                                                else "whitespace")}
    config.update({"special_tokens": specials, "source": source, "target": target})
    write_model_dir(output, config, tensors, src_tokens, tgt_tokens)
    return config


def _padding(plan: "_Plan", source: dict, pad_to_length, side, ignore) -> None:
    """A source Embedding with mask_zero=False reads the padding as real input: Keras fed
    every source padded to a fixed length N and the encoder and attention saw the pads, so
    the model directory records source.pad_to_length / source.padding."""
    if plan.source_mask_zero:
        if pad_to_length:
            warnings.warn("--pad-to-length ignored: the source Embedding has mask_zero=True, "
                          "so Keras ignored the padding", stacklevel=3)
        return
    where = f"{plan.path}: source Embedding '{plan.source_embedding.name}' has mask_zero=False"
    if ignore:
        warnings.warn(f"{where}: Keras fed it padded sources and attended over the padding; "
                      "the converted model does not pad (--ignore-padding), so its results "
                      "differ from Keras' on padded input", stacklevel=3)
        return
    length = pad_to_length or plan.source_length
    if not length:
        raise ModelError(f"{where} and the source Input has no fixed length: pass "
                         "--pad-to-length N (the maxlen the sources were padded to)")
    source["pad_to_length"] = int(length)
    source["padding"] = side


# ======================================================================== graph mapping

@dataclass
class _Rnn:
    layer: Layer
    call: Call
    node: int
    cell: str            # "lstm" / "gru"
    units: int
    reset_after: bool
    bidirectional: bool
    merge: str | None
    arrays: dict         # "forward"/"backward" -> [kernel, recurrent, (bias)]


@dataclass
class _Plan:
    path: str
    source_embedding: Layer
    source_mask_zero: bool
    source_length: int | None
    target_embedding: Layer
    encoder: list[_Rnn]
    decoder: list[_Rnn]
    merge: str
    bridge: dict
    attention: Layer | None
    attention_kind: str | None
    parts: list[str]                  # output-side Concatenate inputs: "context" / "state"
    attentional: tuple | None         # (Layer, kernel, bias) of the Dense(tanh)
    output: tuple                     # (Layer, kernel, bias)
    arrays: dict = field(default_factory=dict)   # layer name -> weight arrays


def _activation(value) -> str:
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        cfg = value.get("config")
        if isinstance(cfg, str):
            return cfg
        if isinstance(cfg, dict) and cfg.get("name"):
            return cfg["name"]
        return str(value.get("class_name", "?"))
    return str(value)


class _Mapper:
    def __init__(self, graph: KerasModel):
        self.g = graph
        self.path = graph.path

    # ---- helpers
    def err(self, layer: Layer | None, message: str) -> ModelError:
        if layer is None:
            return ModelError(f"{self.path}: {message}")
        return ModelError(f"{self.path}: layer '{layer.name}' ({layer.class_name}): {message}")

    def layer(self, ref: Ref) -> Layer:
        if ref.layer not in self.g.layers:
            raise self.err(None, f"the graph refers to an unknown layer '{ref.layer}'")
        return self.g.layers[ref.layer]

    def call(self, ref: Ref) -> Call:
        layer = self.layer(ref)
        if ref.node >= len(layer.calls):
            if layer.class_name == "InputLayer":
                return Call([], {})
            raise self.err(layer, f"the graph refers to call {ref.node}, which is not recorded")
        return layer.calls[ref.node]

    def resolve(self, ref: Ref) -> Ref:
        """Skip layers that are the identity at inference (Dropout and friends)."""
        while True:
            layer = self.layer(ref)
            if layer.class_name not in PASSTHROUGH:
                return ref
            inputs = self.call(ref).inputs
            if not inputs:
                raise self.err(layer, "has no input")
            ref = inputs[0]

    def inner(self, layer: Layer) -> tuple[str, dict]:
        """The wrapped layer of TimeDistributed/Bidirectional."""
        wrapped = layer.config.get("layer")
        if not isinstance(wrapped, dict):
            raise self.err(layer, "has no wrapped layer in its config")
        return wrapped.get("class_name", "?"), wrapped.get("config", {})

    def weights(self, layer: Layer) -> list[np.ndarray]:
        return self.g.weights.get(layer.name, [])

    # ---- checks
    def check_supported(self) -> None:
        for layer in self.g.layers.values():
            cls = layer.class_name
            if cls in ("Functional", "Model", "Sequential"):
                raise self.err(layer, "nested models are not supported; build the training "
                                      "model from layers directly (call the encoder's and "
                                      "decoder's layers, not sub-models)")
            if cls not in SUPPORTED:
                raise self.err(layer, f"this layer type is not supported by the Keras "
                                      f"converter (supported: {SUPPORTED_TEXT})")
            if cls == "TimeDistributed" and self.inner(layer)[0] != "Dense":
                raise self.err(layer, f"wraps {self.inner(layer)[0]}; only TimeDistributed"
                                      "(Dense) is supported")
            if cls == "Bidirectional" and self.inner(layer)[0] not in RNN_CLASSES:
                raise self.err(layer, f"wraps {self.inner(layer)[0]}; only Bidirectional"
                                      "(LSTM) and Bidirectional(GRU) are supported")

    def dense(self, ref: Ref, activations: tuple[str, ...], role: str):
        """(Layer, kernel [in, out], bias or None, activation) of a Dense or
        TimeDistributed(Dense) producing ref."""
        layer = self.layer(ref)
        if layer.class_name == "Dense":
            config = layer.config
        elif layer.class_name == "TimeDistributed":
            config = self.inner(layer)[1]
        else:
            raise self.err(layer, f"expected a Dense or TimeDistributed(Dense) as the {role}")
        activation = _activation(config.get("activation"))
        if activation not in activations:
            raise self.err(layer, f"the {role} must have activation "
                                  f"{' or '.join(activations)}, not {activation!r}")
        arrays = self.weights(layer)
        use_bias = config.get("use_bias", True)
        if len(arrays) != (2 if use_bias else 1):
            raise self.err(layer, f"expected {2 if use_bias else 1} weight arrays, found "
                                  f"{len(arrays)} in the file")
        kernel = np.asarray(arrays[0], np.float32)
        if kernel.ndim != 2:
            raise self.err(layer, f"kernel has shape {list(kernel.shape)}; expected 2-D")
        bias = np.asarray(arrays[1], np.float32) if use_bias else None
        return layer, kernel, bias, activation

    def rnn(self, ref: Ref, role: str) -> _Rnn:
        layer = self.layer(ref)
        call = self.call(ref)
        bidirectional = layer.class_name == "Bidirectional"
        if bidirectional:
            cls, config = self.inner(layer)
            merge = layer.config.get("merge_mode", "concat")
            if merge not in ("concat", "sum"):
                raise self.err(layer, f"merge_mode {merge!r} is not supported (concat or sum)")
            back = layer.config.get("backward_layer")
            if isinstance(back, dict) and back.get("config", {}).get("units",
                                                                     config.get("units")) \
                    != config.get("units"):
                raise self.err(layer, "forward and backward layers differ in size")
        elif layer.class_name in RNN_CLASSES:
            cls, config, merge = layer.class_name, layer.config, None
        else:
            raise self.err(layer, f"expected an LSTM, GRU or Bidirectional layer in the {role}")
        for key, want in (("activation", "tanh"), ("recurrent_activation", "sigmoid")):
            got = _activation(config.get(key, want))
            if got != want:
                raise self.err(layer, f"{key} {got!r} is not supported (the engine computes "
                                      f"{want}; Keras < 2.3 defaulted recurrent_activation to "
                                      "hard_sigmoid)")
        for key in ("stateful", "time_major", "unroll_constants"):
            if config.get(key):
                raise self.err(layer, f"{key}=True is not supported")
        if config.get("go_backwards") and not bidirectional:
            raise self.err(layer, "go_backwards=True is not supported outside Bidirectional")
        if not config.get("return_sequences", False) and ref.index == 0:
            raise self.err(layer, f"the {role} needs return_sequences=True here")
        cell = cls.lower()
        units = int(config["units"])
        reset_after = bool(config.get("reset_after", cls == "GRU")) if cell == "gru" else True
        use_bias = config.get("use_bias", True)
        arrays = self.weights(layer)
        groups = self.g.weight_groups.get(layer.name, [""] * len(arrays))
        per = 3 if use_bias else 2
        if bidirectional:
            if len(arrays) != 2 * per:
                raise self.err(layer, f"expected {2 * per} weight arrays, found {len(arrays)}")
            fwd = [a for a, g in zip(arrays, groups) if g == "forward"]
            bwd = [a for a, g in zip(arrays, groups) if g == "backward"]
            if len(fwd) != per or len(bwd) != per:   # untagged: Keras order is forward first
                fwd, bwd = arrays[:per], arrays[per:]
            split = {"forward": fwd, "backward": bwd}
        else:
            if len(arrays) != per:
                raise self.err(layer, f"expected {per} weight arrays, found {len(arrays)}")
            split = {"forward": list(arrays)}
        gates = 4 if cell == "lstm" else 3
        for direction, values in split.items():
            kernel, recurrent = values[0], values[1]
            if recurrent.shape != (units, gates * units) or kernel.ndim != 2 or \
                    kernel.shape[1] != gates * units:
                raise self.err(layer, f"{direction} weights have shapes "
                                      f"{[list(v.shape) for v in values]}; not a {cls} of "
                                      f"{units} units")
            if use_bias:
                want = (2, gates * units) if cell == "gru" and reset_after else (gates * units,)
                if values[2].shape != want:
                    raise self.err(layer, f"bias has shape {list(values[2].shape)}; expected "
                                          f"{list(want)}")
        return _Rnn(layer, call, ref.node, cell, units, reset_after, bidirectional, merge, split)

    def rnn_stack(self, ref: Ref, role: str):
        """RNN layers from the embedding up to the one producing ref (a sequence), the
        embedding layer and the model input it reads."""
        stack: list[_Rnn] = []
        ref = self.resolve(ref)
        while True:
            layer = self.layer(ref)
            if layer.class_name in RNN_CLASSES or layer.class_name == "Bidirectional":
                if ref.index != 0:
                    raise self.err(layer, f"the {role} uses a state output where a sequence "
                                          "is expected")
                stack.insert(0, self.rnn(ref, role))
                inputs = self.call(ref).inputs
                if not inputs:
                    raise self.err(layer, "has no input")
                ref = self.resolve(inputs[0])
                continue
            if layer.class_name == "Embedding":
                source = self.embedding_input(ref, role)
                if not stack:
                    raise self.err(layer, f"no LSTM/GRU between this Embedding and the {role} "
                                          "output")
                return stack, layer, source
            if layer.class_name == "InputLayer":
                raise self.err(layer, f"the {role} reads the input without an Embedding "
                                      "(one-hot inputs are not supported)")
            raise self.err(layer, f"unexpected in the {role} (expected LSTM, GRU, "
                                  "Bidirectional or Embedding)")

    def embedding_input(self, ref: Ref, role: str) -> Ref:
        layer = self.layer(ref)
        inputs = self.call(ref).inputs
        source = self.resolve(inputs[0]) if inputs else None
        if source is None or self.layer(source).class_name != "InputLayer" or \
                source not in self.g.inputs:
            raise self.err(layer, f"the {role} Embedding must read a model input directly"
                                  + (f", not '{source.layer}'" if source else ""))
        return source

    @staticmethod
    def initial_states(rnn: _Rnn) -> list[Ref]:
        extra = set(rnn.call.kwarg_refs) - {"initial_state", "mask"}
        if extra:
            raise ModelError(f"layer '{rnn.layer.name}': call arguments {sorted(extra)} are "
                             "not supported")
        return list(rnn.call.inputs[1:]) + list(rnn.call.kwarg_refs.get("initial_state", []))

    # ---- the whole model
    def map(self) -> _Plan:
        self.check_supported()
        g = self.g
        if len(g.inputs) != 2 or len(g.outputs) != 1:
            raise self.err(None, f"expected the TRAINING model with two inputs (source and "
                                 f"target token ids) and one output (target probabilities); "
                                 f"found {len(g.inputs)} input(s) and {len(g.outputs)} "
                                 "output(s). Convert the training model, not the inference "
                                 "encoder/decoder models built from its layers")
        ref = self.resolve(g.outputs[0])
        layer = self.layer(ref)
        if layer.class_name in ("Activation", "Softmax"):
            act = "softmax" if layer.class_name == "Softmax" else \
                _activation(layer.config.get("activation"))
            if act not in ("softmax", "linear", "log_softmax"):
                raise self.err(layer, f"the model output must be probabilities or logits, "
                                      f"not {act!r}")
            axis = layer.config.get("axis", -1)
            if axis not in (-1, 2, [-1], [2]):
                raise self.err(layer, f"softmax over axis {axis} is not supported")
            ref = self.resolve(self.call(ref).inputs[0])
        output = self.dense(ref, ("softmax", "linear", "log_softmax"), "output layer")[:3]
        x = self.resolve(self.call(ref).inputs[0])

        attentional = None
        layer = self.layer(x)
        if layer.class_name == "Activation":
            if _activation(layer.config.get("activation")) != "tanh":
                raise self.err(layer, "only tanh is supported between the decoder and the "
                                      "output layer")
            inner = self.resolve(self.call(x).inputs[0])
            attentional = self.dense(inner, ("linear",), "attentional layer")[:3]
            x = self.resolve(self.call(inner).inputs[0])
        elif layer.class_name in ("Dense", "TimeDistributed"):
            attentional = self.dense(x, ("tanh",), "attentional layer (Luong's "
                                                   "h~ = tanh(W [c; s] + b))")[:3]
            x = self.resolve(self.call(x).inputs[0])

        layer = self.layer(x)
        if layer.class_name == "Concatenate":
            axis = layer.config.get("axis", -1)
            if axis not in (-1, 2):
                raise self.err(layer, f"concatenates over axis {axis}; only the last axis "
                                      "(features) is supported")
            part_refs = [self.resolve(r) for r in self.call(x).inputs]
        else:
            part_refs = [x]
        parts, context_ref, state_ref = [], None, None
        for part in part_refs:
            player = self.layer(part)
            if player.class_name in ATTENTION_CLASSES and part.index == 0:
                if context_ref is not None:
                    raise self.err(player, "the attention context is used twice")
                parts.append("context")
                context_ref = part
            elif player.class_name in RNN_CLASSES and part.index == 0:
                if state_ref is not None:
                    raise self.err(player, "the decoder output is used twice")
                parts.append("state")
                state_ref = part
            else:
                raise self.err(player, "expected the decoder's LSTM/GRU output or an "
                                       "Attention/AdditiveAttention context before the "
                                       "output layer")

        attention = attention_kind = None
        if context_ref is not None:
            attention = self.layer(context_ref)
            call = self.call(context_ref)
            if call.kwargs.get("use_causal_mask") or attention.config.get("causal") or \
                    attention.config.get("use_causal_mask"):
                raise self.err(attention, "causal attention over the source is not supported")
            inputs = call.inputs
            if len(inputs) not in (2, 3):
                raise self.err(attention, f"expected [query, value] or [query, value, key], "
                                          f"found {len(inputs)} inputs")
            query, value = self.resolve(inputs[0]), self.resolve(inputs[1])
            if len(inputs) == 3 and self.resolve(inputs[2]) != value:
                raise self.err(attention, "separate key and value tensors are not supported "
                                          "(the key must be the value, the encoder outputs)")
            if state_ref is not None and query != state_ref:
                raise self.err(attention, "the attention query must be the decoder output "
                                          "that is concatenated with the context")
            if self.layer(query).class_name not in RNN_CLASSES:
                raise self.err(attention, f"the query (first input) must be the decoder "
                                          f"LSTM/GRU output, found '{query.layer}' "
                                          f"({self.layer(query).class_name}); did you write "
                                          "Attention()([encoder_outputs, decoder_outputs])?")
            decoder_top = query
            if attention.class_name == "Attention":
                attention_kind = attention.config.get("score_mode", "dot")
                if attention_kind not in ("dot", "concat"):
                    raise self.err(attention, f"score_mode {attention_kind!r} is not supported")
            else:
                attention_kind = "additive"
        else:
            if attentional is not None:
                raise self.err(attentional[0], "a Dense(tanh) between decoder and output "
                                               "needs an attention context")
            if state_ref is None:
                raise self.err(None, "no decoder output found before the output layer")
            decoder_top = state_ref
            value = None

        decoder, target_embedding, target_input = self.rnn_stack(decoder_top, "decoder")
        for rnn in decoder:
            if rnn.bidirectional:
                raise self.err(rnn.layer, "a bidirectional decoder cannot decode step by step")

        # encoder: from the attention memory, or from the states the decoder starts from
        states = [self.initial_states(rnn) for rnn in decoder]
        if value is not None:
            encoder, source_embedding, source_input = self.rnn_stack(value, "encoder")
        else:
            first = next((s[0] for s in states if s), None)
            if first is None:
                raise self.err(None, "the decoder neither attends to nor starts from an "
                                     "encoder: no encoder found")
            top = self._state_producer(self.resolve(first))
            top_rnn = self.rnn(Ref(top.layer, top.node, 1), "encoder")
            below = self.resolve(top_rnn.call.inputs[0])
            if self.layer(below).class_name == "Embedding":
                source_embedding, source_input = self.layer(below), \
                    self.embedding_input(below, "encoder")
                encoder = [top_rnn]
            else:
                encoder, source_embedding, source_input = self.rnn_stack(below, "encoder")
                encoder = encoder + [top_rnn]
        if source_input == target_input:
            raise self.err(source_embedding, "encoder and decoder read the same input")
        for rnn in encoder:
            if self.initial_states(rnn):
                raise self.err(rnn.layer, "an encoder layer with an initial state is not "
                                          "supported")

        for side, stack in (("encoder", encoder), ("decoder", decoder)):
            first = stack[0]
            for rnn in stack[1:]:
                if (rnn.cell, rnn.units, rnn.bidirectional, rnn.merge) != \
                        (first.cell, first.units, first.bidirectional, first.merge):
                    raise self.err(rnn.layer, f"all {side} layers must share cell type, size "
                                              "and direction (the model format has one "
                                              f"setting per {side})")
                if rnn.cell == "gru" and rnn.reset_after != first.reset_after:
                    raise self.err(rnn.layer, f"all {side} GRU layers must share reset_after")

        merge = encoder[0].merge or "concat"
        bridge, bridge_merge = self._bridge(encoder, decoder, states)
        if bridge_merge is not None and bridge_merge != merge:
            if value is not None or len(encoder) > 1:
                raise self.err(encoder[-1].layer, f"the encoder outputs are merged by "
                                                  f"{merge} but the states passed to the "
                                                  f"decoder by {bridge_merge}; the model "
                                                  "format uses one merge for both")
            merge = bridge_merge

        source_cfg = source_embedding.config
        source_input_layer = self.layer(source_input)
        shape = source_input_layer.config.get("batch_shape") or \
            source_input_layer.config.get("batch_input_shape") or [None, None]
        source_length = shape[1] if len(shape) > 1 and isinstance(shape[1], int) else None
        return _Plan(self.path, source_embedding, bool(source_cfg.get("mask_zero", False)),
                     source_length, target_embedding, encoder, decoder, merge, bridge,
                     attention, attention_kind, parts, attentional, output, g.weights)

    def _state_producer(self, ref: Ref) -> Ref:
        layer = self.layer(ref)
        if layer.class_name in ("Concatenate", "Add"):
            ref = self.resolve(self.call(ref).inputs[0])
            layer = self.layer(ref)
        if layer.class_name not in RNN_CLASSES + ("Bidirectional",):
            raise self.err(layer, "the decoder's initial state must come from the encoder's "
                                  "LSTM/GRU states (return_state=True)")
        return ref

    def _state(self, ref: Ref, encoder: list[_Rnn]):
        """(encoder layer index, 'h' or 'c', merge or None) of a decoder initial state."""
        ref = self.resolve(ref)
        layer = self.layer(ref)
        if layer.class_name in ("Concatenate", "Add"):
            merge = "concat" if layer.class_name == "Concatenate" else "sum"
            if merge == "concat" and layer.config.get("axis", -1) not in (-1, 1):
                raise self.err(layer, "states must be concatenated over the last axis")
            inputs = [self.resolve(r) for r in self.call(ref).inputs]
            if len(inputs) != 2:
                raise self.err(layer, "expected the forward and backward states")
            a = self._direction_state(inputs[0], encoder)
            b = self._direction_state(inputs[1], encoder)
            if a[0] != b[0] or a[1] != b[1] or (a[2], b[2]) != ("forward", "backward"):
                raise self.err(layer, "the decoder's initial state must combine one "
                                      "Bidirectional layer's forward and backward states, in "
                                      "that order (forward first)")
            return a[0], a[1], merge
        index, kind, direction = self._direction_state(ref, encoder)
        if direction != "":
            raise self.err(layer, f"the decoder starts from the {direction} state only; "
                                  "the model format needs both directions (concatenated, "
                                  "forward first, or summed)")
        return index, kind, None

    def _direction_state(self, ref: Ref, encoder: list[_Rnn]):
        layer = self.layer(ref)
        for index, rnn in enumerate(encoder):
            if rnn.layer.name == ref.layer and rnn.node == ref.node:
                break
        else:
            raise self.err(layer, "the decoder's initial state must be an encoder state "
                                  "(a return_state output of the encoder's layers)")
        names = ["h", "c"] if rnn.cell == "lstm" else ["h"]
        if rnn.bidirectional:
            table = [(k, "forward") for k in names] + [(k, "backward") for k in names]
        else:
            table = [(k, "") for k in names]
        if not 1 <= ref.index <= len(table):
            raise self.err(layer, f"output {ref.index} is not a state")
        kind, direction = table[ref.index - 1]
        return index, kind, direction

    def _bridge(self, encoder, decoder, states):
        if not any(states):
            return {"type": "zeros"}, None
        if not all(states):
            raise self.err(decoder[[bool(s) for s in states].index(False)].layer,
                           "some decoder layers start from encoder states and others from "
                           "zeros; the model format needs all or none")
        sources, cells, merges = [], set(), set()
        for rnn, refs in zip(decoder, states):
            want = 2 if rnn.cell == "lstm" else 1
            if len(refs) != want:
                raise self.err(rnn.layer, f"expected {want} initial state(s), found {len(refs)}")
            index, kind, merge = self._state(refs[0], encoder)
            if kind != "h":
                raise self.err(rnn.layer, "the initial hidden state is an encoder cell state")
            merges.add(merge)
            if rnn.cell == "lstm":
                if self.resolve(refs[1]) == self.resolve(refs[0]):
                    cells.add("copy_hidden")
                else:
                    cindex, ckind, cmerge = self._state(refs[1], encoder)
                    if ckind != "c" or cindex != index or cmerge != merge:
                        raise self.err(rnn.layer, "the initial cell state must be the cell "
                                                  "state of the encoder layer that gives the "
                                                  "hidden state")
                    cells.add("bridged")
            sources.append(index)
        if len(cells) > 1 or len(merges) > 1:
            raise self.err(decoder[0].layer, "decoder layers start from encoder states in "
                                             "different ways")
        top = len(encoder) - 1
        if sources == list(range(len(decoder))) and len(decoder) == len(encoder):
            source = "matching_layer"
        elif all(s == top for s in sources):
            source = "top_layer"
        else:
            raise self.err(decoder[0].layer, f"decoder layers start from encoder layers "
                                             f"{sources}; only layer by layer or all from the "
                                             "top layer are supported")
        bridge = {"type": "last", "from": source}
        if cells:
            bridge["lstm_cell"] = cells.pop()
        return bridge, merges.pop()


# ======================================================================== tensors

def _rnn_tensors(rnn: _Rnn, prefix: str, tensors: dict) -> None:
    for direction, values in rnn.arrays.items():
        name = f"{prefix}.{direction}" if prefix.startswith("encoder") else prefix
        if rnn.cell == "lstm":
            convert = layouts.lstm_from_keras
            order = (layouts.KERAS_LSTM, layouts.CANONICAL_LSTM)
        else:
            convert = layouts.gru_from_keras
            order = (layouts.KERAS_GRU, layouts.CANONICAL_GRU)
        tensors[f"{name}.weight_ih"] = convert(values[0])
        tensors[f"{name}.weight_hh"] = convert(values[1])
        if len(values) > 2:
            bias = np.asarray(values[2], np.float32)
            if bias.ndim == 2:   # GRU reset_after: [input bias, recurrent bias]
                tensors[f"{name}.bias_ih"] = layouts.reorder_gates(bias[0], *order)
                tensors[f"{name}.bias_hh"] = layouts.reorder_gates(bias[1], *order)
            else:
                tensors[f"{name}.bias_ih"] = layouts.reorder_gates(bias, *order)


def _embedding(layer: Layer, weights: list, path: str) -> np.ndarray:
    if len(weights) != 1 or np.asarray(weights[0]).ndim != 2:
        raise ModelError(f"{path}: layer '{layer.name}' (Embedding): expected one 2-D "
                         "embedding matrix in the file")
    return np.asarray(weights[0], np.float32)


def _build(plan: _Plan) -> tuple[dict, dict]:
    enc, dec = plan.encoder, plan.decoder
    tensors: dict[str, np.ndarray] = {}
    return_config = {}
    src_emb = _embedding(plan.source_embedding, plan.arrays[plan.source_embedding.name],
                         plan.path)
    tgt_emb = _embedding(plan.target_embedding, plan.arrays[plan.target_embedding.name],
                         plan.path)
    tensors["encoder.embedding.weight"] = src_emb
    tensors["decoder.embedding.weight"] = tgt_emb
    for i, rnn in enumerate(enc):
        _rnn_tensors(rnn, f"encoder.layers.{i}", tensors)
    for i, rnn in enumerate(dec):
        _rnn_tensors(rnn, f"decoder.layers.{i}", tensors)
    hd = dec[0].units
    dm = enc[0].units * (2 if enc[0].bidirectional and plan.merge == "concat" else 1)

    encoder_cfg = {"embedding_size": int(src_emb.shape[1]), "cell": enc[0].cell,
                   "hidden_size": enc[0].units, "num_layers": len(enc),
                   "bidirectional": enc[0].bidirectional, "merge": plan.merge,
                   "gru_reset_after": enc[0].reset_after}
    decoder_cfg = {"embedding_size": int(tgt_emb.shape[1]), "cell": dec[0].cell,
                   "hidden_size": hd, "num_layers": len(dec),
                   "gru_reset_after": dec[0].reset_after}

    out_layer, out_kernel, out_bias = plan.output
    vt = tgt_emb.shape[0]
    if out_kernel.shape[1] != vt:
        raise ModelError(f"{plan.path}: target vocabulary sizes disagree: the decoder Embedding "
                         f"'{plan.target_embedding.name}' has input_dim {vt} but the output "
                         f"layer '{out_layer.name}' has {out_kernel.shape[1]} units")

    def to_cs(kernel: np.ndarray, who: Layer) -> np.ndarray:
        """Dense kernel [in, out] reading the Concatenate parts -> weight [out, D_m + H_d]
        reading [c; s] (the canonical order); parts the model does not read get zeros."""
        widths = {"context": dm, "state": hd}
        need = sum(widths[p] for p in plan.parts)
        if kernel.shape[0] != need:
            raise ModelError(f"{plan.path}: layer '{who.name}': kernel has {kernel.shape[0]} "
                             f"inputs; the concatenated {' + '.join(plan.parts)} is {need} wide")
        weight = np.zeros((kernel.shape[1], dm + hd), np.float32)
        offset = 0
        for part in plan.parts:
            start = 0 if part == "context" else dm
            weight[:, start:start + widths[part]] = kernel[offset:offset + widths[part]].T
            offset += widths[part]
        return weight

    if plan.attention is None:
        decoder_cfg["type"] = "none"
        attention_cfg = None
        if out_kernel.shape[0] != hd:
            raise ModelError(f"{plan.path}: layer '{out_layer.name}': expects "
                             f"{out_kernel.shape[0]} inputs, the decoder gives {hd}")
        tensors["decoder.output.weight"] = np.ascontiguousarray(out_kernel.T)
    else:
        decoder_cfg["type"] = "luong"
        decoder_cfg["input_feeding"] = False
        attention_cfg = _attention(plan, tensors, hd, dm)
        if plan.attentional is not None:
            layer, kernel, bias = plan.attentional
            decoder_cfg["attentional_layer"] = True
            decoder_cfg["attentional_size"] = int(kernel.shape[1])
            tensors["decoder.attentional.weight"] = to_cs(kernel, layer)
            if bias is not None:
                tensors["decoder.attentional.bias"] = bias
            tensors["decoder.output.weight"] = np.ascontiguousarray(out_kernel.T)
        else:
            decoder_cfg["attentional_layer"] = False
            tensors["decoder.output.weight"] = to_cs(out_kernel, out_layer)
    if out_bias is not None:
        tensors["decoder.output.bias"] = out_bias
    return_config.update({"encoder": encoder_cfg, "bridge": plan.bridge,
                          "attention": attention_cfg, "decoder": decoder_cfg})
    return return_config, tensors


def _attention(plan: _Plan, tensors: dict, hd: int, dm: int) -> dict:
    layer = plan.attention
    arrays = [np.asarray(a, np.float32) for a in plan.arrays[layer.name]]
    use_scale = bool(layer.config.get("use_scale", False))
    kind = plan.attention_kind
    expected = int(use_scale) + int(kind == "concat")
    if len(arrays) != expected:
        raise ModelError(f"{plan.path}: layer '{layer.name}' ({layer.class_name}): expected "
                         f"{expected} weight array(s), found {len(arrays)}")
    if hd != dm:
        raise ModelError(f"{plan.path}: layer '{layer.name}' ({layer.class_name}): query "
                         f"width {hd} and value width {dm} differ")
    if kind == "dot":
        if use_scale:
            tensors["attention.scale"] = arrays[0].reshape(1)
        return {"score": "dot"}
    if kind == "additive":   # AdditiveAttention: sum(scale * tanh(q + k))
        if use_scale:
            tensors["attention.v"] = arrays[0].reshape(dm)
        return {"score": "additive", "query_projection": False, "key_projection": False}
    # Attention(score_mode="concat"): w * sum(tanh(scale * (q + k)))
    weight = float(arrays[-1].reshape(()))
    tensors["attention.v"] = np.full((dm,), weight, np.float32)
    if not use_scale:
        return {"score": "additive", "query_projection": False, "key_projection": False}
    scale = float(arrays[0].reshape(()))
    tensors["attention.query.weight"] = np.eye(dm, hd, dtype=np.float32) * scale
    tensors["attention.key.weight"] = np.eye(dm, dm, dtype=np.float32) * scale
    return {"score": "additive", "size": dm, "query_projection": True, "key_projection": True}



# ======================================================================== vocabularies

OOV_GUESSES = ("<OOV>", "<oov>", "<unk>", "<UNK>", "[UNK]", "UNK", "<UNKNOWN>")


@dataclass
class VocabularyInfo:
    path: str
    tokens: dict[int, str]           # id -> token, as the Keras side wrote it
    oov: str | None = None           # the out-of-vocabulary token, if any
    lower: bool = False              # Keras Tokenizer settings (defaults for the options)
    char_level: bool = False
    filters: str = ""
    num_words: int | None = None


def load_vocabulary(path: str) -> VocabularyInfo:
    """A Keras Tokenizer's to_json(), a JSON word_index {token: id}, index_word {id: token}
    or token list, or a text file with one token per line. Id 0 is padding when no token
    has it (Tokenizer ids start at 1; an empty first line in a text file, as
    TextVectorization.get_vocabulary() writes it, is padding too)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"cannot read vocabulary {path}: {e}") from e
    if text.lstrip()[:1] in ("{", "["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            if path.endswith(".json"):
                raise ModelError(f"{path}: not valid JSON: {e}") from e
            data = None
        if data is not None:
            return _vocabulary_from_json(path, data)
    lines = text.split("\n")
    if text.endswith("\n"):
        lines = lines[:-1]
    if lines and all(line.endswith("\r") for line in lines):
        lines = [line[:-1] for line in lines]
    if not lines:
        raise ModelError(f"{path}: empty vocabulary")
    tokens = {}
    for i, line in enumerate(lines):
        if line == "":
            if i == 0:
                continue   # padding
            raise ModelError(f"{path}: line {i + 1} is empty")
        tokens[i] = line
    return VocabularyInfo(path, tokens, _guess_oov(tokens))


def _guess_oov(tokens: dict[int, str]) -> str | None:
    token = tokens.get(1)
    return token if 0 not in tokens and token in OOV_GUESSES else None


def _vocabulary_from_json(path: str, data) -> VocabularyInfo:
    def decode(value):
        return json.loads(value) if isinstance(value, str) else value

    if isinstance(data, list):
        if not all(isinstance(t, str) for t in data):
            raise ModelError(f"{path}: a JSON vocabulary list must hold strings")
        tokens = {i: t for i, t in enumerate(data) if not (i == 0 and t == "")}
        if any(t == "" for t in tokens.values()):
            raise ModelError(f"{path}: empty token after position 0")
        return VocabularyInfo(path, tokens, _guess_oov(tokens))
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a Keras Tokenizer JSON, a word_index object or a "
                         "token list")
    info = VocabularyInfo(path, {})
    if "config" in data and isinstance(data["config"], dict):   # tokenizer.to_json()
        config = data["config"]
        if "word_index" not in config:
            raise ModelError(f"{path}: Tokenizer JSON without word_index (fit the tokenizer "
                             "before saving it)")
        word_index = decode(config["word_index"])
        info.oov = config.get("oov_token")
        info.lower = bool(config.get("lower", True))
        info.char_level = bool(config.get("char_level", False))
        info.filters = config.get("filters") or ""
        info.num_words = config.get("num_words")
    elif data and all(isinstance(k, str) and k.isdigit() for k in data) and \
            all(isinstance(v, str) for v in data.values()):              # index_word
        word_index = {v: int(k) for k, v in data.items()}
    else:
        word_index = data
    seen: dict[int, str] = {}
    for token, index in word_index.items():
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ModelError(f"{path}: token {token!r} has id {index!r}; expected an integer "
                             ">= 0")
        if index in seen:
            raise ModelError(f"{path}: tokens {seen[index]!r} and {token!r} share id {index}")
        if token == "":
            raise ModelError(f"{path}: empty token with id {index}")
        seen[index] = token
    info.tokens = seen
    if info.oov is None:
        info.oov = _guess_oov(seen)
    if info.oov is not None and info.oov not in word_index:
        info.oov = None
    return info


def _sanitize(token: str) -> str:
    # a vocabulary line cannot hold a newline (the char-level end token is often "\n")
    return token.replace("\n", "\\n")


def _slots(info: VocabularyInfo, size: int, side: str, embedding: Layer) -> list:
    slots: list = [None] * size
    too_big = []
    for index, token in info.tokens.items():
        if info.num_words and index >= info.num_words:
            continue   # the Tokenizer never produces these ids
        if index >= size:
            too_big.append(index)
            continue
        slots[index] = token
    if too_big:
        raise ModelError(f"{info.path}: the {side} vocabulary has ids up to {max(too_big)} "
                         f"({len(info.tokens)} tokens) but the model's {side} Embedding "
                         f"'{embedding.name}' has input_dim {size}: vocabulary and model do "
                         "not belong together")
    return slots


def _assemble_vocabularies(plan: _Plan, src_info: VocabularyInfo, tgt_info: VocabularyInfo,
                           bos, eos, add_bos: bool, add_eos: bool, pad_name: str):
    """Vocabulary lists of exactly the embeddings' sizes, and the special token strings.

    Id 0 (Keras padding) is named pad_name; the unknown token is the source's OOV token, or
    the padding entry when the source has none (unknown words then read as padding; Keras'
    Tokenizer would drop them). Unused ids get placeholder names."""
    src_size = plan.arrays[plan.source_embedding.name][0].shape[0]
    tgt_size = plan.arrays[plan.target_embedding.name][0].shape[0]
    src = _slots(src_info, src_size, "source", plan.source_embedding)
    tgt = _slots(tgt_info, tgt_size, "target", plan.target_embedding)

    present = {t for t in tgt if t is not None}
    if bos is None and eos is None:
        pair = next((p for p in AUTO_MARKERS if p[0] in present and p[1] in present), None)
        if pair is None:
            raise ModelError(f"{tgt_info.path}: cannot tell the start and end tokens; pass "
                             "--bos and --eos (as they appear in the target vocabulary)")
        bos, eos = pair
    def unescape(token):   # --bos '\t' --eos '\n' typed in a shell
        if token is None or token in present:
            return token
        plain = token.replace("\\t", "\t").replace("\\n", "\n").replace("\\r", "\r")
        return plain if plain in present else token

    bos, eos = unescape(bos), unescape(eos)
    for name, token in (("start (--bos)", bos), ("end (--eos)", eos)):
        if token is None:
            raise ModelError("pass both --bos and --eos")
        if token not in present:
            raise ModelError(f"{tgt_info.path}: the {name} token {token!r} is not in the "
                             "target vocabulary")
    for flag, token in ((add_bos, bos), (add_eos, eos)):
        if flag and token not in src:
            raise ModelError(f"{src_info.path}: the source vocabulary lacks {token!r}, which "
                             "the model is said to add to every source")

    src_oov = src.index(src_info.oov) if src_info.oov is not None and src_info.oov in src \
        else None
    if src[0] is None:
        pad_slot, pad = 0, pad_name
        unk = _sanitize(src_info.oov) if src_oov is not None else pad
    elif src_oov is not None:
        pad_slot = src_oov
        pad = unk = _sanitize(src_info.oov)
    elif None in src:
        pad_slot, pad = src.index(None), pad_name
        unk = pad
    else:
        raise ModelError(f"{src_info.path}: the source vocabulary has no padding (id 0 unused) "
                         "or OOV entry, which rnnsearch needs")
    src[pad_slot] = pad

    tgt_oov = tgt.index(tgt_info.oov) if tgt_info.oov is not None and tgt_info.oov in tgt \
        else None
    if tgt_oov is not None and unk != pad:
        tgt[tgt_oov] = unk
        if tgt[0] is None:
            tgt[0] = pad
    elif tgt[0] is None:
        tgt[0] = unk
    elif tgt_oov is not None:
        tgt[tgt_oov] = unk
    elif None in tgt:
        tgt[tgt.index(None)] = unk
    else:
        raise ModelError(f"{tgt_info.path}: the target vocabulary has no padding (id 0 unused), "
                         "OOV or free entry to stand for the unknown token")

    lists = []
    for side, slots, info in (("source", src, src_info), ("target", tgt, tgt_info)):
        unused = [i for i, t in enumerate(slots) if t is None]
        if unused:
            warnings.warn(f"{info.path}: {len(unused)} of the {len(slots)} {side} ids have no "
                          "token (named <unused_N>)", stacklevel=3)
        names = [f"<unused_{i}>" if t is None else _sanitize(t) for i, t in enumerate(slots)]
        seen: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in seen:
                raise ModelError(f"{info.path}: the {side} vocabulary would name ids "
                                 f"{seen[name]} and {i} both {name!r} (a token clashes with a "
                                 "special token name; see --pad-token)")
            seen[name] = i
        lists.append(names)
    specials = {"pad": pad, "unk": unk, "bos": _sanitize(bos), "eos": _sanitize(eos)}
    return lists[0], lists[1], specials
