"""Nematus- and Marian-style pieces of the reference (docs/model-format.md): layer
normalisation, the GRU with normalised gates and deep transition cells, and the readout
normalised per input part. Written with plain torch operations, like the rest of the
reference, and independent of the engine's C code.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SplitLayerNorm(nn.Module):
    """Layer normalisation over the whole vector, or over [0, split) and [split, width)
    separately (split > 0); parameters weight (gain) and bias of the full width."""

    def __init__(self, width: int, eps: float, split: int = 0):
        super().__init__()
        self.eps, self.split = eps, split
        self.weight = nn.Parameter(torch.empty(width).uniform_(0.5, 1.5))
        self.bias = nn.Parameter(torch.empty(width).uniform_(-0.2, 0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.split:
            return F.layer_norm(x, (x.size(-1),), self.weight, self.bias, self.eps)
        s = self.split
        return torch.cat([F.layer_norm(x[..., :s], (s,), self.weight[:s], self.bias[:s], self.eps),
                          F.layer_norm(x[..., s:], (x.size(-1) - s,), self.weight[s:],
                                       self.bias[s:], self.eps)], dim=-1)


class DeepGRUCell(nn.Module):
    """A GRU (reset after the recurrent product) whose input part a = W_ih x + b_ih and
    recurrent part u = W_hh h + b_hh may be layer-normalised ("joint": all three gates at
    once; "split": [r; z] and n), followed in the same step by the deep transition cells
    `depth.{k}`, which read no input (their input part is the constant bias_ih).

    `depth_inputs` gives a depth cell an input of its own instead (the conditional
    decoder's cell after the attention, depth.1); such a cell is run by the caller through
    `cell_step`, and `forward` only runs the cells without input."""

    def __init__(self, input_size: int, hidden_size: int, layer_norm: str = "none",
                 eps: float = 1e-5, depth: int = 1, depth_inputs: dict | None = None):
        super().__init__()
        H, bound = hidden_size, hidden_size ** -0.5
        self.hidden_size = H
        self.weight_ih = nn.Parameter(torch.empty(3 * H, input_size).uniform_(-bound, bound)) \
            if input_size else None
        self.weight_hh = nn.Parameter(torch.empty(3 * H, H).uniform_(-bound, bound))
        self.bias_ih = nn.Parameter(torch.empty(3 * H).uniform_(-bound, bound))
        self.bias_hh = nn.Parameter(torch.empty(3 * H).uniform_(-bound, bound))
        self.norm_ih = self.norm_hh = None
        if layer_norm != "none":
            split = 2 * H if layer_norm == "split" else 0
            if input_size:
                self.norm_ih = SplitLayerNorm(3 * H, eps, split)
            self.norm_hh = SplitLayerNorm(3 * H, eps, split)
        depth_inputs = depth_inputs or {}
        self.depth = nn.ModuleDict({
            str(k): DeepGRUCell(depth_inputs.get(k, 0), H, layer_norm, eps)
            for k in range(1, depth)})

    def cell_step(self, x: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
        """This cell alone, x None for a cell without input."""
        if self.weight_ih is None:
            a = self.bias_ih.expand(h.size(0), -1)
        else:
            a = F.linear(x, self.weight_ih, self.bias_ih)
            if self.norm_ih is not None:
                a = self.norm_ih(a)
        u = F.linear(h, self.weight_hh, self.bias_hh)
        if self.norm_hh is not None:
            u = self.norm_hh(u)
        a_r, a_z, a_n = a.chunk(3, dim=-1)
        u_r, u_z, u_n = u.chunk(3, dim=-1)
        r, z = torch.sigmoid(a_r + u_r), torch.sigmoid(a_z + u_z)
        n = torch.tanh(a_n + r * u_n)
        return (1 - z) * n + z * h

    def transitions(self, h: torch.Tensor, first: int = 1) -> torch.Tensor:
        for k in range(first, len(self.depth) + 1):
            cell = self.depth[str(k)]
            if cell.weight_ih is None:
                h = cell.cell_step(None, h)
        return h

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.transitions(self.cell_step(x, h))


class ReadoutNorm(nn.Module):
    """The readout normalised per input part: r = sum_k LN_k(W_k x_k + input_bias_k) + b
    (W_k: the part's columns of the readout weight). Parameters [parts, R]."""

    def __init__(self, parts: int, size: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(parts, size).uniform_(0.5, 1.5))
        self.bias = nn.Parameter(torch.empty(parts, size).uniform_(-0.2, 0.2))
        self.input_bias = nn.Parameter(torch.empty(parts, size).uniform_(-0.2, 0.2))

    def forward(self, readout: nn.Linear, parts: list[torch.Tensor]) -> torch.Tensor:
        total, start = readout.bias, 0
        for k, x in enumerate(parts):
            weight = readout.weight[:, start:start + x.size(-1)]
            start += x.size(-1)
            y = F.linear(x, weight, self.input_bias[k])
            total = total + F.layer_norm(y, (y.size(-1),), self.weight[k], self.bias[k], self.eps)
        return total
