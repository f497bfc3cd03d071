"""The peer benchmark's ONNX graphs: the reference model exported as an encoder graph and a
one-step decoder graph (`torch.onnx.export`, dynamo=False), the decoder step with an in-graph
TopK head for ONNX Runtime's beam search, and their int8 versions made by ONNX Runtime's own
`onnxruntime.quantization.quantize_dynamic` (what its docs advise for recurrent and
transformer models on CPU)."""
from __future__ import annotations

import logging
import os
import sys
import warnings
from dataclasses import dataclass, replace

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from ..reference.modules import DecoderState

class EncoderGraph(nn.Module):
    """The reference encoder as a user writes it for export: one bidirectional
    nn.LSTM / nn.GRU holding the reference's weights (the reference runs every direction as
    its own module over packed sequences), then the reference's bridge and attention keys.
    Exact for sources without padding, which is all the benchmark feeds."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        layers = model.encoder.layers
        first = layers[0][0].rnn
        self.rnn = type(first)(first.input_size, first.hidden_size, num_layers=len(layers),
                               bidirectional=True, batch_first=True)
        with torch.no_grad():
            for index, layer in enumerate(layers):
                for direction, rnn in enumerate(layer):
                    suffix = f"_l{index}" + ("_reverse" if direction else "")
                    for name, param in rnn.cell_parameters().items():
                        getattr(self.rnn, name + suffix).copy_(param)

    def forward(self, src):
        model = self.model
        memory, final = self.rnn(model.encoder.embedding(src))
        h, c = final if isinstance(final, tuple) else (final, torch.zeros_like(final))
        finals = [([h[2 * l], h[2 * l + 1]], [c[2 * l], c[2 * l + 1]])
                  for l in range(h.size(0) // 2)]
        mask = torch.ones_like(src, dtype=torch.bool)
        hidden, cell = model.bridge(memory, mask, finals)
        outputs = [memory, model.attention_keys(memory), torch.stack(hidden)]
        if cell is not None:
            outputs.append(torch.stack(cell))
        return tuple(outputs)


class DecoderStepGraph(nn.Module):
    """One reference decoder step (`decode_step`, log-probabilities out) with the states
    as stacked tensors [layers, batch, H], as ONNX graphs carry them."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.lstm = isinstance(model.decoder.layers[0], nn.LSTMCell)
        self.input_feeding = model.decoder.input_feeding

    def forward(self, y, memory, keys, mask, h, *more):
        more = list(more)
        c = more.pop(0) if self.lstm else None
        feed = more.pop(0) if self.input_feeding else None
        hidden = [h[l] for l in range(h.size(0))]
        cell = None if c is None else [c[l] for l in range(c.size(0))]
        state = DecoderState(hidden, cell, hidden[-1], feed)
        log_probs, new, attention = self.model.decode_step(y, state, memory, mask, keys)
        outputs = [log_probs, torch.stack(new.hidden)]
        if self.lstm:
            outputs.append(torch.stack(new.cell))
        if self.input_feeding:
            outputs.append(new.feed)
        return tuple(outputs + [attention])


@dataclass(frozen=True)
class StateIO:
    """A decoder-step state input; the graph returns its next value as `{name}_out`."""
    name: str
    batch_axis: int
    width: int
    from_encoder: bool    # else it starts at zeros (Luong input feeding)


@dataclass(frozen=True)
class OnnxGraphs:
    encoder: str
    decoder: str
    states: tuple[StateIO, ...]


def export_onnx(model, directory: str) -> OnnxGraphs:
    """encoder.onnx (src -> memory, keys, h[, c]) and decoder.onnx (y, memory, keys, mask,
    states -> log_probs, next states, attention), batch and source length dynamic."""
    dec = model.decoder
    L, H, B, S = len(dec.layers), dec.hidden_size, 2, 7
    encoder, step = EncoderGraph(model).eval(), DecoderStepGraph(model).eval()
    states = [StateIO("h", 1, H, True)]
    if step.lstm:
        states.append(StateIO("c", 1, H, True))
    if step.input_feeding:
        states.append(StateIO("feed", 0, dec.attentional_width, False))
    src = torch.randint(4, model.source_vocab_size, (B, S))
    with torch.no_grad():
        encoded = encoder(src)
    state_examples = [torch.randn(L, B, s.width) if s.batch_axis else torch.randn(B, s.width)
                      for s in states]
    step_args = (torch.tensor([5, 6]), encoded[0], encoded[1], torch.ones(B, S, dtype=torch.bool),
                 *state_examples)
    by_rows = {0: "batch", 1: "length"}
    dynamic = {"y": {0: "batch"}, "memory": by_rows, "keys": by_rows, "mask": by_rows,
               **{s.name: {s.batch_axis: "batch"} for s in states}}
    paths = OnnxGraphs(os.path.join(directory, "encoder.onnx"),
                       os.path.join(directory, "decoder.onnx"), tuple(states))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's tracer warnings
        torch.onnx.export(encoder, (src,), paths.encoder, dynamo=False, input_names=["src"],
                          output_names=["memory", "keys"] + [s.name for s in states
                                                             if s.from_encoder],
                          dynamic_axes={"src": by_rows}, opset_version=17)
        torch.onnx.export(step, step_args, paths.decoder, dynamo=False,
                          input_names=list(dynamic),
                          output_names=["log_probs"] + [s.name + "_out" for s in states]
                          + ["attention"],
                          dynamic_axes=dynamic, opset_version=17)
    return paths


TOP_K_OUTPUTS = ("top_totals", "top_ids")


def with_top_k(graphs: OnnxGraphs, eos: int, path: str) -> OnnxGraphs:
    """The decoder-step graph with a TopK head, as a tuned ORT beam search runs it: inputs
    `scores` [rows] (each row's hypothesis score) and `k` [1] join the step's inputs;
    `top_totals`, `top_ids` [rows, k] (the k best score + log-probability of every row, EOS
    banned since every engine decodes a fixed length) replace `log_probs` and `attention`
    among the outputs. The NumPy side then chooses among k x k candidates per sentence, not
    among k x vocabulary."""
    model = onnx.load(graphs.decoder)
    graph = model.graph
    (log_probs,) = [o for o in graph.output if o.name == "log_probs"]
    vocab = log_probs.type.tensor_type.shape.dim[1].dim_value
    ban = np.zeros(vocab, np.float32)
    ban[eos] = -np.inf
    graph.initializer.extend([numpy_helper.from_array(ban, "eos_ban"),
                              numpy_helper.from_array(np.array([1], np.int64), "axis_1")])
    graph.input.extend([helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch"]),
                        helper.make_tensor_value_info("k", TensorProto.INT64, [1])])
    graph.node.extend([
        helper.make_node("Unsqueeze", ["scores", "axis_1"], ["scores_column"]),
        helper.make_node("Add", ["log_probs", "eos_ban"], ["log_probs_banned"]),
        helper.make_node("Add", ["log_probs_banned", "scores_column"], ["totals"]),
        helper.make_node("TopK", ["totals", "k"], list(TOP_K_OUTPUTS), axis=-1, largest=1,
                         sorted=1)])
    states = [o for o in graph.output if o.name not in ("log_probs", "attention")]
    del graph.output[:]
    graph.output.extend([
        helper.make_tensor_value_info("top_totals", TensorProto.FLOAT, ["batch", "k"]),
        helper.make_tensor_value_info("top_ids", TensorProto.INT64, ["batch", "k"]), *states])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return replace(graphs, decoder=path)


def quantized(graphs: OnnxGraphs, directory: str) -> OnnxGraphs:
    """Both graphs through ONNX Runtime's documented int8 recipe: `quant_pre_process`
    (shape inference and graph optimisation), then `quantize_dynamic` with int8 weights
    (activations quantized per call): MatMul/Gemm and the encoder's LSTM/GRU nodes become
    their dynamically quantized forms. A graph the pre-processing refuses is quantized as
    exported (noted on stderr)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process
    paths = []
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)   # quantize_dynamic's advice to pre-process: done
    try:
        for path in (graphs.encoder, graphs.decoder):
            stem = os.path.join(directory, os.path.basename(path).replace(".onnx", ""))
            source = stem + ".pre.onnx"
            try:
                quant_pre_process(path, source)
            except Exception as error:  # noqa: BLE001  (any refusal: quantize as exported)
                print(f"quant_pre_process refused {path} ({error}); quantizing it as "
                      f"exported", file=sys.stderr)
                source = path
            quantize_dynamic(source, stem + ".int8.onnx", weight_type=QuantType.QInt8)
            paths.append(stem + ".int8.onnx")
    finally:
        logger.setLevel(level)
    return replace(graphs, encoder=paths[0], decoder=paths[1])
