"""User-style PyTorch models over feature sources, written the way their recipes describe
them, with no rnnsearch code: the fixture tool trains them (tools/make_feature_fixtures.py)
and the tests decode them step by step through tests/oracle_search.py to get the
framework's own output for the engine to match.

- ShowAttendTell: the decoder of the widely used PyTorch captioning tutorial
  (sgrvinod/a-PyTorch-Tutorial-to-Image-Captioning, models.py), which follows Xu et al. 2015:
  h0, c0 = linear layers over the mean annotation; attention full_att(relu(encoder_att(a) +
  decoder_att(h))); a gate sigmoid(f_beta(h)) on the context (per dimension); an LSTMCell
  over [embedding; gated context]; the output layer from h. Options for the paper's own
  choices: tanh attention, a scalar gate (f_beta to one unit) and the deep output
  L_o(tanh(E y + L_h h + L_z z)).
- PyramidalListener: the encoder of Listen, Attend and Spell (Chan et al. 2016): a BLSTM
  over the frames, then pBLSTM layers that each read the concatenation of consecutive pairs
  of the layer below's outputs, an odd last output dropped (as the PyTorch LAS
  implementations do: x[:, :T // 2 * 2].reshape(B, T // 2, 2 D), lengths // 2).
- Speller: an attention decoder over any memory (Bahdanau order): additive attention
  queried with the previous state, an LSTMCell over [embedding; context], the output layer
  over [state; context].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def _mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    return torch.arange(size)[None, :] < lengths[:, None]


class CaptionAttention(nn.Module):
    """The tutorial's attention network: scores full_att(act(W_e a_i + W_d h))."""

    def __init__(self, encoder_dim, decoder_dim, attention_dim, activation="relu"):
        super().__init__()
        self.encoder_att = nn.Linear(encoder_dim, attention_dim)
        self.decoder_att = nn.Linear(decoder_dim, attention_dim)
        self.full_att = nn.Linear(attention_dim, 1)
        self.activation = torch.relu if activation == "relu" else torch.tanh

    def forward(self, encoder_out, decoder_hidden):
        scores = self.full_att(self.activation(
            self.encoder_att(encoder_out) + self.decoder_att(decoder_hidden).unsqueeze(1)))
        alpha = torch.softmax(scores.squeeze(2), dim=1)
        return (encoder_out * alpha.unsqueeze(2)).sum(dim=1), alpha


class ShowAttendTell(nn.Module):
    def __init__(self, vocab_size, encoder_dim, embed_dim=16, decoder_dim=32, attention_dim=24,
                 gate="vector", output="h", attention_activation="relu"):
        super().__init__()
        self.output_kind = output
        self.attention = CaptionAttention(encoder_dim, decoder_dim, attention_dim,
                                          attention_activation)
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.decode_step = nn.LSTMCell(embed_dim + encoder_dim, decoder_dim)
        self.init_h = nn.Linear(encoder_dim, decoder_dim)
        self.init_c = nn.Linear(encoder_dim, decoder_dim)
        self.f_beta = nn.Linear(decoder_dim, encoder_dim if gate == "vector" else 1)
        if output == "h":
            self.fc = nn.Linear(decoder_dim, vocab_size)
        else:   # Xu et al. eq. 7: p(y) ~ exp(L_o(E y + L_h h + L_z z)), with tanh inside
            self.L_h = nn.Linear(decoder_dim, embed_dim)
            self.L_z = nn.Linear(encoder_dim, embed_dim)
            self.L_o = nn.Linear(embed_dim, vocab_size)

    def init_hidden_state(self, encoder_out):
        mean = encoder_out.mean(dim=1)
        return self.init_h(mean), self.init_c(mean)

    def step(self, tokens, h, c, encoder_out):
        context, alpha = self.attention(encoder_out, h)
        context = torch.sigmoid(self.f_beta(h)) * context
        embedded = self.embedding(tokens)
        h, c = self.decode_step(torch.cat([embedded, context], dim=1), (h, c))
        if self.output_kind == "h":
            logits = self.fc(h)
        else:
            logits = self.L_o(torch.tanh(embedded + self.L_h(h) + self.L_z(context)))
        return logits, h, c, alpha

    def forward(self, encoder_out, captions):
        """Teacher forcing: captions [B, T] (BOS first) -> logits [B, T - 1, V]."""
        h, c = self.init_hidden_state(encoder_out)
        logits = []
        for t in range(captions.size(1) - 1):
            step_logits, h, c, _ = self.step(captions[:, t], h, c, encoder_out)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)


class PyramidalListener(nn.Module):
    def __init__(self, input_dim, hidden, pyramid_layers=2):
        super().__init__()
        self.bottom = nn.LSTM(input_dim, hidden, bidirectional=True, batch_first=True)
        self.pyramid = nn.ModuleList(
            nn.LSTM(4 * hidden, hidden, bidirectional=True, batch_first=True)
            for _ in range(pyramid_layers))

    @staticmethod
    def _run(lstm, x, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = lstm(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0]

    def forward(self, frames, lengths):
        """frames [B, T, F], lengths [B] -> memory [B, T', 2H], lengths [B]."""
        x = self._run(self.bottom, frames, lengths)
        for lstm in self.pyramid:
            B, T, D = x.shape
            x = x[:, :T // 2 * 2].reshape(B, T // 2, 2 * D)
            lengths = lengths // 2
            x = self._run(lstm, x, lengths)
        return x, lengths


class Speller(nn.Module):
    def __init__(self, vocab_size, memory_dim, embed_dim=16, hidden=48, attention_dim=32):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.W = nn.Linear(memory_dim, attention_dim)
        self.U = nn.Linear(hidden, attention_dim, bias=False)
        self.v = nn.Linear(attention_dim, 1, bias=False)
        self.cell = nn.LSTMCell(embed_dim + memory_dim, hidden)
        self.out = nn.Linear(hidden + memory_dim, vocab_size)
        self.hidden = hidden

    def initial_state(self, memory):
        zeros = memory.new_zeros(memory.size(0), self.hidden)
        return zeros, zeros

    def step(self, tokens, h, c, memory, mask):
        scores = self.v(torch.tanh(self.W(memory) + self.U(h).unsqueeze(1))).squeeze(2)
        alpha = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        context = torch.bmm(alpha.unsqueeze(1), memory).squeeze(1)
        h, c = self.cell(torch.cat([self.embedding(tokens), context], dim=1), (h, c))
        return self.out(torch.cat([h, context], dim=1)), h, c, alpha

    def forward(self, memory, lengths, targets):
        """Teacher forcing: targets [B, T] (BOS first) -> logits [B, T - 1, V]."""
        mask = _mask(lengths, memory.size(1))
        h, c = self.initial_state(memory)
        logits = []
        for t in range(targets.size(1) - 1):
            step_logits, h, c, _ = self.step(targets[:, t], h, c, memory, mask)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)


class ListenAttendSpell(nn.Module):
    def __init__(self, vocab_size, input_dim, listener_hidden=24, pyramid_layers=2):
        super().__init__()
        self.listener = PyramidalListener(input_dim, listener_hidden, pyramid_layers)
        self.speller = Speller(vocab_size, 2 * listener_hidden)

    def encode(self, frames, lengths):
        return self.listener(frames, lengths)


def sequence_loss(logits, targets, pad: int = 0):
    """Cross-entropy of logits [B, T - 1, V] against targets[:, 1:], padding ignored."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets[:, 1:].reshape(-1),
                           ignore_index=pad)
