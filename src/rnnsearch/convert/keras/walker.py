"""Walking a Keras layer graph (files.py) a layer at a time, for the mapping: which layer
types are supported, layers that are the identity at inference skipped, Dense and LSTM/GRU
layers read with their weights checked, and stacks of recurrent layers followed down to the
Embedding and model input they read.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import ModelError
from .files import Call, KerasModel, Layer, Ref

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


@dataclass
class Rnn:
    layer: Layer
    call: Call
    node: int
    cell: str            # "lstm" / "gru"
    units: int
    reset_after: bool
    bidirectional: bool
    merge: str | None
    arrays: dict         # "forward"/"backward" -> [kernel, recurrent, (bias)]


def activation_name(value) -> str:
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


class GraphWalker:
    """The graph of one Keras model, read a layer at a time; errors name the file and layer."""

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
        seen = set()
        while True:
            layer = self.layer(ref)
            if layer.class_name not in PASSTHROUGH:
                return ref
            self.no_cycle(ref, seen, layer)
            inputs = self.call(ref).inputs
            if not inputs:
                raise self.err(layer, "has no input")
            ref = inputs[0]

    def no_cycle(self, ref: Ref, seen: set, layer: Layer) -> None:
        """A layer call that (through others) reads its own output: not a model."""
        if ref in seen:
            raise self.err(layer, "reads its own output (the graph has a cycle)")
        seen.add(ref)

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
        activation = activation_name(config.get("activation"))
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

    def rnn(self, ref: Ref, role: str) -> Rnn:
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
            got = activation_name(config.get(key, want))
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
        return Rnn(layer, call, ref.node, cell, units, reset_after, bidirectional, merge, split)

    def rnn_stack(self, ref: Ref, role: str):
        """RNN layers from the embedding up to the one producing ref (a sequence), the
        embedding layer (None: the first layer reads one-hot vectors) and the model input
        it reads."""
        stack: list[Rnn] = []
        ref = self.resolve(ref)
        seen = set()
        while True:
            layer = self.layer(ref)
            self.no_cycle(ref, seen, layer)
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
            if layer.class_name == "InputLayer" and stack:   # one-hot vectors
                self.one_hot_width(ref, stack[0], role)
                return stack, None, ref
            raise self.err(layer, f"unexpected in the {role} (expected LSTM, GRU, "
                                  "Bidirectional or Embedding)")

    def one_hot_width(self, ref: Ref, first: Rnn, role: str) -> int:
        """V of a float input [batch, T, V] read by the first recurrent layer directly (the
        Keras lstm_seq2seq example): its kernel rows are the embeddings of the V tokens."""
        layer = self.layer(ref)
        if ref not in self.g.inputs:
            raise self.err(layer, f"the {role} reads a tensor that is not a model input")
        shape = layer.config.get("batch_shape") or layer.config.get("batch_input_shape")
        dtype = layer.config.get("dtype", "float32")
        if isinstance(dtype, dict):   # a dtype policy
            dtype = dtype.get("config", {}).get("name", "?")
        rows = int(first.arrays["forward"][0].shape[0])
        if not isinstance(shape, list) or len(shape) != 3 or shape[2] != rows:
            raise self.err(layer, f"the {role} reads this input without an Embedding, so it "
                                  f"must be one-hot vectors [batch, length, {rows}] (the "
                                  f"width of layer '{first.layer.name}''s kernel); its shape "
                                  f"is {shape}")
        if not str(dtype).startswith(("float", "bfloat")):
            raise self.err(layer, f"the {role} reads this {dtype} input without an "
                                  "Embedding; token ids need an Embedding, one-hot vectors "
                                  "a float input")
        return rows

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
    def initial_states(rnn: Rnn) -> list[Ref]:
        extra = set(rnn.call.kwarg_refs) - {"initial_state", "mask"}
        if extra:
            raise ModelError(f"layer '{rnn.layer.name}': call arguments {sorted(extra)} are "
                             "not supported")
        return list(rnn.call.inputs[1:]) + list(rnn.call.kwarg_refs.get("initial_state", []))
