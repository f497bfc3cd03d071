"""Self-attentive pooling of the encoder's memory in plain PyTorch (docs/model-format.md,
"pooling"), from the papers' equations: Lin et al. 2017, eq. 5-6,
A = softmax(W_s2 tanh(W_s1 H^T)), M = A H; with a bias on W_s1 it is Yang et al. 2016's
HAN attention (eq. 5-7: u_j = tanh(W h_j + b), a_j = softmax_j(u_j^T u_w)) for r = 1."""
from __future__ import annotations

import torch
from torch import nn


class SelfAttentivePooling(nn.Module):
    """projection (W_s1 with bias, nn.Linear(D_m, size)), query (W_s2, nn.Linear(size,
    rows, bias=False)): the spec's encoder.pooling.* tensors."""

    def __init__(self, pooling: dict, memory_width: int):
        super().__init__()
        self.projection = nn.Linear(memory_width, pooling["size"])
        self.query = nn.Linear(pooling["size"], pooling["rows"], bias=False)

    def forward(self, memory: torch.Tensor, mask: torch.Tensor):
        """memory [B, S, D_m], mask [B, S] -> summary M [B, rows, D_m], weights A
        [B, rows, S]."""
        scores = self.query(torch.tanh(self.projection(memory)))        # [B, S, rows]
        scores = scores.masked_fill(~mask[:, :, None], float("-inf"))
        weights = torch.softmax(scores, dim=1).transpose(1, 2)           # [B, rows, S]
        return torch.bmm(weights, memory), weights
