"""The one-hot models the converter tests decode (fixtures made by
tools/make_one_hot_fixtures.py): PyTorch counterparts of the Keras lstm_seq2seq example,
exported to ONNX; the Keras models themselves are in one_hot_keras.py."""
from __future__ import annotations

import warnings

import torch
from torch import nn

SRC = list(" abcdefgh")                          # ONNX models: one-hot positions
TGT = ["<s>", "</s>", " "] + list("abcdefgh")
BOS, EOS = 0, 1                                  # in TGT
H = 10                                           # the PyTorch models' LSTM units


class OneHotEncoder(nn.Module):
    """lstm_seq2seq's encoder in PyTorch: an LSTM reading one-hot vectors, optionally
    through a bias-free Linear first (an 'embedding' as a matrix product)."""

    def __init__(self, project=False):
        super().__init__()
        self.project = nn.Linear(len(SRC), 7, bias=False) if project else None
        self.rnn = nn.LSTM(7 if project else len(SRC), H, batch_first=True)

    def forward(self, x):                       # [batch, length, V]
        memory, (h, c) = self.rnn(self.project(x) if self.project is not None else x)
        return memory, h, c


class ReluEncoder(OneHotEncoder):
    """Not a lookup: the one-hot vectors go through arithmetic before the LSTM."""

    def forward(self, x):
        return super().forward(torch.relu(x - 0.5))


class OneHotStep(nn.Module):
    """One decoder step fed the previous character one-hot [batch, V]; Keras' dot
    Attention over the memory and Dense over [decoder output; context], or no attention
    (then the step takes no memory)."""

    def __init__(self, attention=True, argmax=False):
        super().__init__()
        self.attention, self.argmax = attention, argmax
        self.embedding = nn.Embedding(len(TGT), len(TGT)) if argmax else None
        self.rnn = nn.LSTM(len(TGT), H, batch_first=True)
        self.out = nn.Linear(2 * H if attention else H, len(TGT))

    def forward(self, y, h, c, memory=None):
        if self.argmax:   # the one-hot vector turned back into an id: not a matrix product
            y = self.embedding(y.argmax(-1))
        s, (h1, c1) = self.rnn(y.unsqueeze(1), (h, c))
        s = s[:, 0]
        if not self.attention:
            return torch.log_softmax(self.out(s), -1), h1, c1
        a = torch.softmax(torch.bmm(memory, s.unsqueeze(2)).squeeze(2), -1)
        s = torch.cat([s, torch.bmm(a.unsqueeze(1), memory).squeeze(1)], 1)
        return torch.log_softmax(self.out(s), -1), h1, c1, a


def export_onnx(encoder, step, directory, dynamo=False, vocab_axis=False):
    """encoder.onnx and decoder.onnx in directory (a pathlib.Path), with dynamic batch and
    length axes (and a dynamic vocabulary axis for vocab_axis=True, which the converter
    refuses); dynamo=True: torch's dynamo exporter, else TorchScript at opset 17."""
    x = torch.eye(len(SRC))[torch.tensor([[1, 2, 3, 4, 5], [2, 3, 4, 5, 6]])]
    memory, h, c = encoder(x)
    y = torch.eye(len(TGT))[torch.tensor([3, 4])]
    enc_path, dec_path = str(directory / "encoder.onnx"), str(directory / "decoder.onnx")
    x_axes = {0: "batch", 1: "length", **({2: "vocab"} if vocab_axis else {})}
    n = 4 if step.attention else 3   # the step's inputs: y, h, c (, memory)
    args = (y, h, c, memory)[:n]
    inputs = ["y", "h", "c", "memory"][:n]
    outputs = ["log_probs", "h_out", "c_out", "attention"][:n]
    axes = {"y": {0: "batch"}, "h": {1: "batch"}, "c": {1: "batch"},
            "memory": {0: "batch", 1: "length"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not dynamo:
            torch.onnx.export(encoder, (x,), enc_path, input_names=["x"],
                              output_names=["memory", "h", "c"], dynamic_axes={"x": x_axes},
                              dynamo=False, opset_version=17)
            torch.onnx.export(step, args, dec_path, input_names=inputs,
                              output_names=outputs,
                              dynamic_axes={k: axes[k] for k in inputs},
                              dynamo=False, opset_version=17)
        else:
            batch, length = torch.export.Dim("batch", max=512), torch.export.Dim("length",
                                                                                 max=512)
            torch.onnx.export(encoder, (x,), enc_path, input_names=["x"],
                              output_names=["memory", "h", "c"],
                              dynamic_shapes=({0: batch, 1: length},))
            dims = {"batch": batch, "length": length}
            torch.onnx.export(step, args, dec_path, input_names=inputs, output_names=outputs,
                              dynamic_shapes=tuple({a: dims[d] for a, d in axes[k].items()}
                                                   for k in inputs))
    return enc_path, dec_path
