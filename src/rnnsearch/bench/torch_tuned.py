"""The reference model as a user tunes it for CPU inference, for the peer benchmark:

- `prepacked_onednn`: every matrix product of a decoder step (cells, attention, attentional
  and output layers) runs oneDNN's linear on weights reordered ("prepacked") once into its
  blocked layout, what `torch.compile` freezing (inductor's mkldnn pass), IPEX or
  `torch.utils.mkldnn` give a user instead of `nn.Linear`'s default path;
- `dynamic_int8`: `torch.ao.quantization.quantize_dynamic` (int8 weights, activations
  quantized per call), PyTorch's own int8 recipe for recurrent models on CPU.

Both act on nn.Linear, and torch's fused cells (nn.LSTMCell, nn.GRUCell) call their own
matrix products, so the decoder cells are first rewritten as two nn.Linear each plus the gate
arithmetic (`linearized`). The encoder's nn.LSTM / nn.GRU run once per sentence: prepacking
leaves them to torch's own RNN kernel, quantize_dynamic quantizes them.
"""
from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from ..reference.modules import GRUCellResetBefore


def _linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    linear = nn.Linear(weight.size(1), weight.size(0), bias=bias is not None)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias)
    return linear


class LinearLSTMCell(nn.LSTMCell):
    """nn.LSTMCell's step, gates [i, f, g, o], with its products as nn.Linear. A subclass of
    nn.LSTMCell only so that the reference's run_cell hands it (h, c); it holds no
    parameters of its own."""

    def __init__(self, cell: nn.LSTMCell):
        nn.Module.__init__(self)
        self.input_size, self.hidden_size = cell.input_size, cell.hidden_size
        self.ih = _linear(cell.weight_ih, cell.bias_ih)
        self.hh = _linear(cell.weight_hh, cell.bias_hh)

    def forward(self, x, state):
        h, c = state
        i, f, g, o = (self.ih(x) + self.hh(h)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class LinearGRUCell(nn.Module):
    """nn.GRUCell (reset after the recurrent product) or GRUCellResetBefore, gates
    [r, z, n], with its products as nn.Linear."""

    def __init__(self, cell: nn.Module):
        super().__init__()
        self.reset_before = isinstance(cell, GRUCellResetBefore)
        self.ih = _linear(cell.weight_ih, cell.bias_ih)
        H = cell.hidden_size
        if self.reset_before:   # W_hn multiplies r * h: its own product
            self.hh = _linear(cell.weight_hh[:2 * H], cell.bias_hh[:2 * H])
            self.hn = _linear(cell.weight_hh[2 * H:], cell.bias_hh[2 * H:])
        else:
            self.hh = _linear(cell.weight_hh, cell.bias_hh)

    def forward(self, x, h):
        x_r, x_z, x_n = self.ih(x).chunk(3, dim=-1)
        if self.reset_before:
            h_r, h_z = self.hh(h).chunk(2, dim=-1)
        else:
            h_r, h_z, h_n = self.hh(h).chunk(3, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + (self.hn(r * h) if self.reset_before else r * h_n))
        return (1 - z) * n + z * h


def linearized(model: nn.Module) -> nn.Module:
    """A copy of the model whose decoder cells are LinearLSTMCell / LinearGRUCell."""
    model = copy.deepcopy(model).eval()
    layers = model.decoder.layers
    for index, cell in enumerate(layers):
        if isinstance(cell, nn.LSTMCell):
            layers[index] = LinearLSTMCell(cell)
        elif isinstance(cell, (nn.GRUCell, GRUCellResetBefore)):
            layers[index] = LinearGRUCell(cell)
        else:
            raise ValueError(f"decoder cell {type(cell).__name__}: no linearized form")
    return model


class PrepackedLinear(nn.Module):
    """nn.Linear on oneDNN with the weight reordered once per row count (as inductor's
    freezing does for every static shape it compiles): the first call of a shape packs,
    later calls only multiply."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.weight = linear.weight.detach().clone()
        self.bias = None if linear.bias is None else linear.bias.detach().clone()
        self.out_features = linear.out_features
        self._packed = {}

    def forward(self, x):
        rows = x.reshape(-1, x.size(-1))
        count = rows.size(0)
        if count not in self._packed:
            self._packed[count] = torch.ops.mkldnn._reorder_linear_weight(self.weight, count)
        out = torch.ops.mkldnn._linear_pointwise(rows, self._packed[count], self.bias,
                                                 "none", [], "")
        return out.reshape(*x.shape[:-1], self.out_features)


def _replace_linears(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, PrepackedLinear(child))
        else:
            _replace_linears(child)


def prepacked_onednn(model: nn.Module) -> nn.Module:
    """A copy of the model whose every nn.Linear (decoder cells included) is a
    PrepackedLinear. Needs a PyTorch built with oneDNN (every x86 wheel is)."""
    if not torch.backends.mkldnn.is_available():
        raise RuntimeError("this PyTorch has no oneDNN (torch.backends.mkldnn)")
    model = linearized(model)
    _replace_linears(model)
    return model


def dynamic_int8(model: nn.Module) -> nn.Module:
    """A copy of the model through quantize_dynamic: int8 nn.Linear (decoder cells
    included) and int8 encoder nn.LSTM / nn.GRU."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch.ao.quantization's deprecation notices
        return torch.ao.quantization.quantize_dynamic(
            linearized(model), {nn.Linear, nn.LSTM, nn.GRU}, dtype=torch.qint8)


def compiled_frozen(model: nn.Module) -> nn.Module:
    """A copy of the model whose decoder step is `torch.compile`d by inductor with freezing
    (weights folded in as constants, linear weights prepacked), static shapes: every new row
    count compiles again, which takes minutes on a busy machine (the benchmark's warm-up
    does it outside the clock). Needs a C++ compiler."""
    import torch._inductor.config as inductor_config
    inductor_config.freezing = True
    model = copy.deepcopy(model).eval()
    model.decode_step = torch.compile(model.decode_step, dynamic=False)
    return model
