"""The training model's graph mapped onto the canonical model: from the output back through
the output layer, the attentional layer, the concatenation of context and decoder output,
the attention and the decoder to the encoder, and from the decoder's initial states to the
bridge. The result, a Plan, says which layers play which role; tensors.py turns it into the
config and tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .files import Layer, Ref
from .walker import ATTENTION_CLASSES, RNN_CLASSES, GraphWalker, Rnn, activation_name


@dataclass
class Plan:
    path: str
    source_embedding: Layer | None    # None: the encoder reads one-hot vectors
    source_mask_zero: bool
    source_length: int | None
    target_embedding: Layer | None    # None: the decoder reads one-hot vectors
    encoder: list[Rnn]
    decoder: list[Rnn]
    merge: str
    bridge: dict
    attention: Layer | None
    attention_kind: str | None
    parts: list[str]                  # output-side Concatenate inputs: "context" / "state"
    attentional: tuple | None         # (Layer, kernel, bias) of the Dense(tanh)
    output: tuple                     # (Layer, kernel, bias)
    # (Layer, kernel [D_m, P], bias or None) of a linear Dense / TimeDistributed(Dense) the
    # encoder outputs pass through before the attention reads them (keys and values)
    memory_projection: tuple | None = None
    bridge_tensors: dict = field(default_factory=dict)   # a dense bridge's weights
    arrays: dict = field(default_factory=dict)   # layer name -> weight arrays
    source_input: Layer | None = None

    def vocabulary_size(self, side: str) -> int:
        """V of a side: its Embedding's input_dim, or the width of its one-hot vectors."""
        embedding = self.source_embedding if side == "source" else self.target_embedding
        if embedding is not None:
            return int(self.arrays[embedding.name][0].shape[0])
        first = self.encoder[0] if side == "source" else self.decoder[0]
        return int(first.arrays["forward"][0].shape[0])

    def describe_size(self, side: str) -> str:
        """What fixes a side's vocabulary size, for messages."""
        embedding = self.source_embedding if side == "source" else self.target_embedding
        role = "encoder" if side == "source" else "decoder"
        if embedding is not None:
            return f"the {role} Embedding '{embedding.name}' has input_dim " \
                   f"{self.vocabulary_size(side)}"
        first = self.encoder[0] if side == "source" else self.decoder[0]
        return f"the {role}'s first layer '{first.layer.name}' reads one-hot vectors of " \
               f"{self.vocabulary_size(side)}"


class Mapper(GraphWalker):
    """The whole training model: map() follows it from the output back to the inputs."""

    def map(self) -> Plan:
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
                activation_name(layer.config.get("activation"))
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
            if activation_name(layer.config.get("activation")) != "tanh":
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
            value, memory_projection = self._memory_projection(value)
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
            memory_projection = None
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
            elif self.layer(below).class_name == "InputLayer":   # lstm_seq2seq: one-hot
                self.one_hot_width(below, top_rnn, "encoder")
                source_embedding, source_input, encoder = None, below, [top_rnn]
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
        bridge, bridge_merge, bridge_tensors = self._bridge(encoder, decoder, states)
        if bridge_merge is not None and bridge_merge != merge:
            if value is not None or len(encoder) > 1:
                raise self.err(encoder[-1].layer, f"the encoder outputs are merged by "
                                                  f"{merge} but the states passed to the "
                                                  f"decoder by {bridge_merge}; the model "
                                                  "format uses one merge for both")
            merge = bridge_merge

        source_cfg = source_embedding.config if source_embedding is not None else {}
        source_input_layer = self.layer(source_input)
        shape = source_input_layer.config.get("batch_shape") or \
            source_input_layer.config.get("batch_input_shape") or [None, None]
        source_length = shape[1] if len(shape) > 1 and isinstance(shape[1], int) else None
        return Plan(self.path, source_embedding, bool(source_cfg.get("mask_zero", False)),
                     source_length, target_embedding, encoder, decoder, merge, bridge,
                     attention, attention_kind, parts, attentional, output,
                     memory_projection=memory_projection, bridge_tensors=bridge_tensors,
                     arrays=g.weights, source_input=source_input_layer)

    def _memory_projection(self, value: Ref):
        """(the encoder output ref, the projection or None): a linear Dense or
        TimeDistributed(Dense) between the encoder outputs and the attention (a 2H-wide
        bidirectional encoder meeting an H-wide decoder) is folded into the attention's keys
        and the layer reading the context, since Σ_j a_j (W h_j + b) = W Σ_j a_j h_j + b."""
        layer = self.layer(value)
        if layer.class_name not in ("Dense", "TimeDistributed"):
            return value, None
        dense, kernel, bias, _ = self.dense(
            value, ("linear",), "projection of the encoder outputs (a non-linear one cannot "
                               "be folded into the attention)")
        inner = self.resolve(self.call(value).inputs[0])
        if self.layer(inner).class_name not in RNN_CLASSES + ("Bidirectional",):
            raise self.err(dense, "expected the encoder's LSTM/GRU outputs before this "
                                  "projection")
        return inner, (dense, kernel, bias)

    def _state_producer(self, ref: Ref) -> Ref:
        layer = self.layer(ref)
        if layer.class_name == "Dense":   # a dense bridge
            ref = self.resolve(self.call(ref).inputs[0])
            layer = self.layer(ref)
        if layer.class_name in ("Concatenate", "Add"):
            ref = self.resolve(self.call(ref).inputs[0])
            layer = self.layer(ref)
        if layer.class_name not in RNN_CLASSES + ("Bidirectional",):
            raise self.err(layer, "the decoder's initial state must come from the encoder's "
                                  "LSTM/GRU states (return_state=True)")
        return ref

    def _state(self, ref: Ref, encoder: list[Rnn]):
        """(encoder layer index, 'h' or 'c', merge or None, Dense or None) of a decoder
        initial state: an encoder state, both directions' merged, or a Dense over the
        directions' concatenation (a dense bridge; then the merge is free)."""
        ref = self.resolve(ref)
        layer = self.layer(ref)
        if layer.class_name == "Dense":
            dense = self.dense(ref, ("tanh", "relu", "linear"), "bridge")
            index, kind, merge, inner = self._state(self.call(ref).inputs[0], encoder)
            if merge == "sum" or inner is not None:
                raise self.err(layer, "a bridge Dense must read an encoder state, or the "
                                      "concatenation of its directions (forward first)")
            return index, kind, None, dense
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
            return a[0], a[1], merge, None
        index, kind, direction = self._direction_state(ref, encoder)
        if direction != "":
            raise self.err(layer, f"the decoder starts from the {direction} state only; "
                                  "the model format needs both directions (concatenated, "
                                  "forward first, or summed)")
        return index, kind, None, None

    def _direction_state(self, ref: Ref, encoder: list[Rnn]):
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
        """(bridge config, the merge of the states passed through or None, the dense
        bridge's tensors)."""
        if not any(states):
            return {"type": "zeros"}, None, {}
        if not all(states):
            raise self.err(decoder[[bool(s) for s in states].index(False)].layer,
                           "some decoder layers start from encoder states and others from "
                           "zeros; the model format needs all or none")
        sources, cells, merges, activations, tensors = [], set(), set(), set(), {}
        for layer_index, (rnn, refs) in enumerate(zip(decoder, states)):
            want = 2 if rnn.cell == "lstm" else 1
            if len(refs) != want:
                raise self.err(rnn.layer, f"expected {want} initial state(s), found {len(refs)}")
            index, kind, merge, dense = self._state(refs[0], encoder)
            if kind != "h":
                raise self.err(rnn.layer, "the initial hidden state is an encoder cell state")
            merges.add(merge)
            denses = [("hidden", dense)]
            if rnn.cell == "lstm":
                if self.resolve(refs[1]) == self.resolve(refs[0]):
                    cells.add("copy_hidden")
                else:
                    cindex, ckind, cmerge, cdense = self._state(refs[1], encoder)
                    if ckind != "c" or cindex != index or cmerge != merge or \
                            (cdense is None) != (dense is None):
                        raise self.err(rnn.layer, "the initial cell state must be the cell "
                                                  "state of the encoder layer that gives the "
                                                  "hidden state, passed the same way")
                    cells.add("bridged")
                    denses.append(("cell", cdense))
            for state, found in denses:
                activations.add(None if found is None else found[3])
                if found is not None:
                    _, kernel, bias, _ = found
                    tensors[f"bridge.layers.{layer_index}.{state}.weight"] = \
                        np.ascontiguousarray(kernel.T)
                    if bias is not None:
                        tensors[f"bridge.layers.{layer_index}.{state}.bias"] = bias
            sources.append(index)
        if len(cells) > 1 or len(merges) > 1 or len(activations) > 1:
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
        activation = activations.pop()
        bridge = {"type": "last" if activation is None else "dense", "from": source}
        if activation is not None:
            bridge["activation"] = "identity" if activation == "linear" else activation
        if cells:
            bridge["lstm_cell"] = cells.pop()
        return bridge, merges.pop(), tensors
