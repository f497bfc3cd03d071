"""PyTorch modules for the model family of docs/model-format.md.

`Seq2Seq(config, source_vocab_size, target_vocab_size)` implements every option of format
v1 with torch's own recurrent layers (nn.LSTM / nn.GRU / nn.RNN and their cells) wherever
they compute the spec's equations, so this reference does not share code or layout
decisions with the C engine. Only the GRU with `gru_reset_after: false` (which torch
lacks) is written out by hand.

Shapes: B batch, S source length, T target length, V target vocabulary.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .. import source_options
from ..model_spec import FORMAT_NAME, FORMAT_VERSION, normalize_config
from .attention import Attention
from .deep import DeepGRUCell, ReadoutNorm, SplitLayerNorm
from .pooling import SelfAttentivePooling
from .source import ACTIVATIONS, source_modules, subsample
from .stateful_attention import STATEFUL


def full_config(config: dict) -> dict:
    """The config with every default of the spec filled in (and validated)."""
    config = dict(config)
    config.setdefault("format", FORMAT_NAME)
    config.setdefault("format_version", FORMAT_VERSION)
    return normalize_config(config)


# ---------------------------------------------------------------------------- cells

class GRUCellResetBefore(nn.Module):
    """GRU with the reset gate applied before the recurrent product (Cho et al., Theano,
    Nematus): n = tanh(W_in x + b_in + W_hn (r * h) + b_hn). Same parameter layout as
    nn.GRUCell, gates [r, z, n]."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)  # nn.GRUCell's initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        x_r, x_z, x_n = F.linear(x, self.weight_ih, self.bias_ih).chunk(3, dim=-1)
        w_hr, w_hz, w_hn = self.weight_hh.chunk(3, dim=0)
        b_hr, b_hz, b_hn = self.bias_hh.chunk(3, dim=0)
        r = torch.sigmoid(x_r + F.linear(h, w_hr, b_hr))
        z = torch.sigmoid(x_z + F.linear(h, w_hz, b_hz))
        n = torch.tanh(x_n + F.linear(r * h, w_hn, b_hn))
        return (1 - z) * n + z * h


def is_deep(section: dict) -> bool:
    """Whether a section's GRUs are deep.DeepGRUCell (layer norm or deep transition)."""
    return section["layer_norm"] != "none" or section["cell_depth"] > 1


def make_cell(cell: str, input_size: int, hidden_size: int, reset_after: bool,
              section: dict | None = None) -> nn.Module:
    """A single-step cell whose parameters are named weight_ih, weight_hh, bias_ih, bias_hh
    (the spec's names); `section` (encoder or decoder config) may ask for a deep one."""
    if section is not None and is_deep(section):
        return DeepGRUCell(input_size, hidden_size, section["layer_norm"],
                           section["layer_norm_eps"], section["cell_depth"])
    if cell == "lstm":
        return nn.LSTMCell(input_size, hidden_size)
    if cell == "gru":
        return nn.GRUCell(input_size, hidden_size) if reset_after else \
            GRUCellResetBefore(input_size, hidden_size)
    return nn.RNNCell(input_size, hidden_size, nonlinearity=cell[len("rnn_"):])


def run_cell(cell: nn.Module, x, h, c):
    """One step of any cell; c is the LSTM cell state (None for other cells)."""
    if isinstance(cell, nn.LSTMCell):
        return cell(x, (h, c))
    return cell(x, h), None


# -------------------------------------------------------------------------- encoder

def padding_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """[B, S] bool, True at real tokens."""
    return torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of x [B, S, D] within its own length (padding stays at the
    end), so a forward run over the result is the backward direction. Its own inverse."""
    S = x.size(1)
    t = torch.arange(S, device=x.device)[None, :]
    index = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)
    return x.gather(1, index[:, :, None].expand(-1, -1, x.size(2)))


class EncoderRNN(nn.Module):
    """One direction of one encoder layer over a padded batch, each sentence stopping at
    its own last token."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, reset_after: bool,
                 section: dict | None = None):
        super().__init__()
        self.hidden_size = hidden_size
        self.rnn = self.cell = None
        if section is not None and is_deep(section):
            self.cell = make_cell(cell, input_size, hidden_size, reset_after, section)
        elif cell == "gru" and not reset_after:
            self.cell = GRUCellResetBefore(input_size, hidden_size)
        elif cell == "lstm":
            self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True)
        elif cell == "gru":
            self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)
        else:
            self.rnn = nn.RNN(input_size, hidden_size, nonlinearity=cell[len("rnn_"):],
                              batch_first=True)

    def cell_parameters(self) -> dict[str, nn.Parameter]:
        """weight_ih, weight_hh, bias_ih, bias_hh (the spec's suffixes)."""
        if self.cell is not None:
            return dict(self.cell.named_parameters())
        return {name: getattr(self.rnn, name + "_l0")
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        """x [B, S, I] -> outputs [B, S, H] (zeros at padding), final h [B, H], final c
        [B, H] (zeros for cells without a cell state)."""
        B, S, _ = x.shape
        if self.cell is not None:
            return self._loop(x, lengths)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, final = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=S)
        h, c = final if isinstance(final, tuple) else (final, torch.zeros_like(final))
        return out, h[0], c[0]

    def _loop(self, x, lengths):
        B, S, _ = x.shape
        h = x.new_zeros(B, self.hidden_size)
        outputs = []
        for t in range(S):
            running = (t < lengths)[:, None]
            new_h = self.cell(x[:, t], h)
            h = torch.where(running, new_h, h)  # finished sentences keep their final state
            outputs.append(new_h * running)
        return torch.stack(outputs, dim=1), h, torch.zeros_like(h)


class Encoder(nn.Module):
    """The source stage (embedding, or the frames' input projection), L_e (bi)directional
    layers layers.{l}.{0 forward, 1 backward}, subsampling and per-layer projections."""

    def __init__(self, config: dict, vocab_size: int | None, dropout: float):
        super().__init__()
        enc = config["encoder"]
        self.bidirectional, self.merge = enc["bidirectional"], enc["merge"]
        self.residual, self.stacking = enc["residual"], enc["stacking"]
        H = enc["hidden_size"]
        self.width = source_options.memory_width(config)
        self.factors, self.mode = source_options.factors(enc), enc["subsample_mode"]
        self.embedding, self.input_projection, self.input_activation = \
            source_modules(config, vocab_size)
        self.layers = nn.ModuleList()
        for input_size in source_options.layer_input_widths(config):
            self.layers.append(nn.ModuleList(
                EncoderRNN(enc["cell"], input_size, H, enc["gru_reset_after"], enc)
                for _ in range(2 if self.bidirectional else 1)))
        self.projections = None
        if enc["projection"] is not None:
            self.projection_activation = ACTIVATIONS[enc["projection"]["activation"]]
            self.projections = nn.ModuleList(
                nn.Linear(source_options.reduced_output_width(config, layer),
                          enc["projection"]["size"]) for layer in range(len(self.layers)))
        self.dropout = nn.Dropout(dropout)

    def source(self, src: torch.Tensor) -> torch.Tensor:
        """ids [B, S] -> embeddings; frames [B, S, F] -> (projected) frames."""
        if self.embedding is not None:
            return self.embedding(src)
        if self.input_projection is not None:
            return self.input_activation(self.input_projection(src))
        return src

    def forward(self, src: torch.Tensor, lengths: torch.Tensor):
        """-> memory [B, S_m, D_m] (zeros at padding), mask [B, S_m], and per layer the
        final states ([h_forward, h_backward], [c_forward, c_backward])."""
        x, lengths = subsample(self.dropout(self.source(src)), lengths, self.factors[0],
                               self.mode, at_input=True)
        finals = []
        for index, layer in enumerate(self.layers):
            mask = padding_mask(lengths, x.size(1))
            outputs, hs, cs = [], [], []
            for direction, rnn in enumerate(layer):
                backward = direction == 1
                if self.stacking == "alternating":
                    backward = (direction + index) % 2 == 1
                inputs = x
                if index > 0 and self.stacking != "layerwise":  # its own stack's half
                    inputs = x.chunk(2, dim=-1)[direction]
                out, h, c = rnn(reverse_padded(inputs, lengths) if backward else inputs,
                                lengths)
                outputs.append(reverse_padded(out, lengths) if backward else out)
                hs.append(h)
                cs.append(c)
            merged = torch.cat(outputs, dim=-1) if self.merge == "concat" else sum(outputs)
            if self.residual and index > 0:
                merged = merged + x
            merged = merged * mask[:, :, None]
            finals.append((hs, cs))
            merged, lengths = subsample(merged, lengths, self.factors[index + 1], self.mode,
                                        at_input=False)
            if self.projections is not None:
                merged = self.projections[index](merged)
                if index < len(self.layers) - 1:   # ESPnet's RNNP: none after the top
                    merged = self.projection_activation(merged)
            x = self.dropout(merged) if index < len(self.layers) - 1 else merged
        mask = padding_mask(lengths, x.size(1))
        return x * mask[:, :, None], mask, finals


# --------------------------------------------------------------------------- bridge

class Bridge(nn.Module):
    """The decoder's initial state per layer; layers.{l}.hidden / .cell for dense/mean."""

    def __init__(self, bridge: dict, enc: dict, dec: dict, memory_width: int):
        super().__init__()
        self.type, self.source = bridge["type"], bridge["from"]
        self.activation = ACTIVATIONS[bridge["activation"]]
        self.lstm_cell = bridge["lstm_cell"] if dec["cell"] == "lstm" else None
        self.merge, self.num_layers, self.hidden_size = enc["merge"], dec["num_layers"], \
            dec["hidden_size"]
        self.encoder_layers = enc["num_layers"]
        self.layers = nn.ModuleList()
        if self.type in ("dense", "mean", "pooling"):
            width = memory_width if self.type == "mean" else \
                memory_width * enc["pooling"]["rows"] if self.type == "pooling" else \
                enc["hidden_size"] * (2 if enc["bidirectional"] else 1) * \
                (self.encoder_layers if self.source == "all_layers" else 1)
            for _ in range(self.num_layers):
                linears = {"hidden": nn.Linear(width, self.hidden_size)}
                if self.lstm_cell == "bridged":
                    linears["cell"] = nn.Linear(width, self.hidden_size)
                if bridge["layer_norm"]:  # hidden_norm / cell_norm after each product
                    linears.update({f"{state}_norm": SplitLayerNorm(
                        self.hidden_size, bridge["layer_norm_eps"]) for state in list(linears)})
                self.layers.append(nn.ModuleDict(linears))

    @staticmethod
    def _dense(linears: nn.ModuleDict, state: str, x: torch.Tensor) -> torch.Tensor:
        y = linears[state](x)
        return linears[state + "_norm"](y) if state + "_norm" in linears else y

    def _merge(self, states: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(states, dim=-1) if self.merge == "concat" else sum(states)

    def forward(self, memory, mask, finals, pooled=None):
        """-> (hidden per decoder layer, cell per layer or None for non-LSTM decoders).
        pooled: encoder.pooling's summary [B, rows, D_m], which a `pooling` bridge reads."""
        zeros = memory.new_zeros(memory.size(0), self.hidden_size)
        mean = None
        if self.type == "mean":
            mean = memory.sum(dim=1) / mask.sum(dim=1, keepdim=True).to(memory.dtype)
        elif self.type == "pooling":  # like mean, from the pooled summary, rows flattened
            mean = pooled.flatten(1)
        hidden, cell = [], []
        for layer in range(self.num_layers):
            h = c = zeros
            if self.type in ("last", "dense"):
                if self.source == "all_layers":  # every layer's [fwd; bwd], in layer order
                    hs = [state for layer_hs, _ in finals for state in layer_hs]
                    cs = [state for _, layer_cs in finals for state in layer_cs]
                else:
                    hs, cs = finals[self.encoder_layers - 1 if self.source == "top_layer"
                                    else layer]
                if self.type == "last":
                    h, c = self._merge(hs), self._merge(cs)
                else:  # dense reads both directions concatenated, forward first
                    linears = self.layers[layer]
                    h = self.activation(self._dense(linears, "hidden", torch.cat(hs, dim=-1)))
                    if "cell" in linears:  # encoders without cell states give zeros
                        c = self.activation(self._dense(linears, "cell", torch.cat(cs, dim=-1)))
            elif self.type in ("mean", "pooling"):
                linears = self.layers[layer]
                h = self.activation(self._dense(linears, "hidden", mean))
                if "cell" in linears:
                    c = self.activation(self._dense(linears, "cell", mean))
            hidden.append(h)
            cell.append({"bridged": c, "copy_hidden": h}.get(self.lstm_cell, zeros))
        return hidden, (cell if self.lstm_cell is not None else None)


# ------------------------------------------------------------------------ attention

# The attention types: reference/attention.py (Attention).


# -------------------------------------------------------------------------- decoder

def _pick_state(state, index: torch.Tensor):
    """Rows `index` of an attention type's state (None, a tensor or a tuple of them)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(x.index_select(0, index) for x in state)
    return state.index_select(0, index)


@dataclass
class DecoderState:
    """Everything one decoder step carries to the next, batched over rows."""
    hidden: list[torch.Tensor]            # per layer [B, H_d]
    cell: list[torch.Tensor] | None       # per layer [B, H_d], LSTM decoders only
    output: torch.Tensor                  # o_{t-1} [B, H_d], the Bahdanau query
    feed: torch.Tensor | None             # h~_{t-1} [B, D_a], Luong input feeding only
    attention: object = None              # the attention type's per-row state: None, a
                                          # tensor or a tuple of tensors (rows first)
    attended: torch.Tensor | None = None  # [B] previous argmax (attention constraint)
    started: bool = False                 # a step has been taken (start_embedding)

    def select(self, index: torch.Tensor) -> "DecoderState":
        """Rows `index` (e.g. the parents of the surviving beam hypotheses)."""
        pick = lambda x: None if x is None else x.index_select(0, index)  # noqa: E731
        return DecoderState([pick(h) for h in self.hidden],
                            None if self.cell is None else [pick(c) for c in self.cell],
                            pick(self.output), pick(self.feed), _pick_state(self.attention, index),
                            pick(self.attended), self.started)


class Decoder(nn.Module):
    """Embedding, cells layers.{l}, and the attentional / readout / output layers."""

    def __init__(self, dec: dict, vocab_size: int, context_width: int, dropout: float):
        super().__init__()
        self.type, self.residual = dec["type"], dec["residual"]
        self.hidden_size, E = dec["hidden_size"], dec["embedding_size"]
        self.input_feeding = self.type == "luong" and dec["input_feeding"]
        self.feed_context = dec["feed"] == "context"  # feed c_{t-1} instead of h~_{t-1}
        self.readout_type = dec["readout"]
        self.readout_inputs = dec["readout_inputs"]
        self.attentional_width = dec["attentional_size"] or self.hidden_size
        self.attentional_activation = ACTIVATIONS[dec["attentional_activation"]]
        self.start_zeros = dec["start_embedding"] == "zeros"
        self.embedding = nn.Embedding(vocab_size, E)
        self.feed_width = context_width if self.feed_context else self.attentional_width
        first = E + {"bahdanau": context_width,
                     "luong": self.feed_width if self.input_feeding else 0,
                     "none": 0, "conditional": 0}[self.type]
        self.layers = nn.ModuleList(
            make_cell(dec["cell"], first if layer == 0 else self.hidden_size,
                      self.hidden_size, dec["gru_reset_after"], dec)
            for layer in range(dec["num_layers"]))
        if self.type == "conditional":
            # layer 0: GRU 1 (embedding), attention, GRU 2 (context, depth.1), transitions
            self.layers[0] = DeepGRUCell(first, self.hidden_size, dec["layer_norm"],
                                         dec["layer_norm_eps"], dec["base_cell_depth"],
                                         {1: context_width})
        self.attentional = self.readout = self.readout_norm = None
        if self.type == "luong":
            output_width = context_width + self.hidden_size  # [c; s]
            if dec["attentional_layer"]:
                self.attentional = nn.Linear(output_width, self.attentional_width)
                output_width = self.attentional_width
        elif self.type in ("bahdanau", "conditional"):
            widths = {"state": self.hidden_size, "context": context_width, "embedding": E}
            output_width = sum(widths[name] for name in self.readout_inputs)
            if self.readout_type != "none":
                self.readout = nn.Linear(output_width, dec["readout_size"])
                output_width = dec["readout_size"] // (2 if self.readout_type == "maxout" else 1)
                if dec["readout_layer_norm"]:
                    self.readout_norm = ReadoutNorm(len(self.readout_inputs), dec["readout_size"],
                                                    dec["readout_layer_norm_eps"])
        else:
            output_width = self.hidden_size
        self.output = nn.Linear(output_width, vocab_size)
        self.dropout = nn.Dropout(dropout)

    def layers_step(self, x, state: DecoderState, first_layer: int = 0):
        """Run the stack once (from first_layer, x being the output of the layer below);
        -> (o_t, new hidden list of the layers run, new cell list or None)."""
        hidden, cell = [], []
        for index, layer in enumerate(self.layers):
            if index < first_layer:
                continue
            h, c = run_cell(layer, x, state.hidden[index],
                            None if state.cell is None else state.cell[index])
            hidden.append(h)
            cell.append(c)
            x = h + x if self.residual and index > 0 else h
        return x, hidden, (cell if state.cell is not None else None)

    def conditional_first_layer(self, embedded, state: DecoderState, attend):
        """Layer 0 of a conditional decoder: GRU 1 reads the embedding, the attention
        `attend(query)` -> (context, weights) reads its state, GRU 2 reads the context, then
        the deep transition cells; -> (state, context, weights)."""
        layer = self.layers[0]
        h = layer.cell_step(embedded, state.hidden[0])
        context, weights = attend(h)
        if "1" in layer.depth:
            h = layer.transitions(layer.depth["1"].cell_step(context, h), first=2)
        return h, context, weights

    def bahdanau_readout(self, o, context, embedded):
        parts = {"state": o, "context": context, "embedding": embedded}
        if self.readout_norm is not None:
            r = self.readout_norm(self.readout, [parts[name] for name in self.readout_inputs])
        else:
            r = torch.cat([parts[name] for name in self.readout_inputs], dim=-1)
            if self.readout is None:
                return r
            r = self.readout(r)
        if self.readout_type == "tanh":
            return torch.tanh(r)
        if self.readout_type == "maxout":  # max over adjacent pairs (0,1), (2,3), ...
            return r.view(r.size(0), -1, 2).max(dim=-1).values
        return r


# -------------------------------------------------------------------------- seq2seq

class Seq2Seq(nn.Module):
    """The whole model. Parameter tree: encoder, bridge, attention (None for decoder type
    'none'), decoder; see reference.export.spec_parameters for the tensor names.

    `dropout` (not part of the format) applies only in training mode: to both embeddings,
    between encoder layers and to the output layer's input."""

    def __init__(self, config: dict, source_vocab_size: int, target_vocab_size: int,
                 dropout: float = 0.0):
        super().__init__()
        self.config = full_config(config)
        enc, dec = self.config["encoder"], self.config["decoder"]
        self.source_vocab_size, self.target_vocab_size = source_vocab_size, target_vocab_size
        self.encoder = Encoder(self.config, source_vocab_size, dropout)
        memory_width = self.encoder.width
        self.bridge = Bridge(self.config["bridge"], enc, dec, memory_width)
        self.pooling = None
        if enc["pooling"] is not None:
            self.pooling = SelfAttentivePooling(enc["pooling"], memory_width)
        self.attention = None
        context_width = memory_width
        if dec["type"] != "none":
            att = self.config["attention"]
            stateful = STATEFUL.get(att["type"])
            self.attention = Attention(att, dec["hidden_size"], memory_width) \
                if stateful is None else \
                stateful(att, dec["hidden_size"], memory_width, dec["embedding_size"])
            context_width = self.attention.context_width
        self.context_projection = None  # SpeechBrain's mlp_out
        if dec["type"] != "none" and self.config["attention"]["context_size"] is not None:
            self.context_projection = nn.Linear(context_width,
                                                self.config["attention"]["context_size"])
            context_width = self.config["attention"]["context_size"]
        self.first_layer_query = dec["attention_query"] == "first_layer"
        self.decoder = Decoder(dec, target_vocab_size, context_width, dropout)

    @property
    def has_attention(self) -> bool:
        return self.attention is not None

    def encode(self, src: torch.Tensor, lengths: torch.Tensor):
        """src [B, S] ids (any padding id) or [B, S, F] feature frames, lengths [B] ≥ 1 ->
        (memory [B, S_m, D_m], initial DecoderState, mask [B, S_m]); S_m < S when the
        encoder subsamples."""
        if int(lengths.min()) < 1:
            raise ValueError("encode needs non-empty sources")
        memory, mask, finals = self.encoder(src, lengths)
        if int(mask.sum(dim=1).min()) < 1:
            raise ValueError("a source too short for the encoder's subsampling")
        pooled = self.pooling(memory, mask)[0] if self.pooling is not None else None
        hidden, cell = self.bridge(memory, mask, finals, pooled)
        feed = None
        if self.decoder.input_feeding:
            feed = memory.new_zeros(memory.size(0), self.decoder.feed_width)
        attention = self.attention.initial_state(mask) if self.attention is not None else None
        attended = torch.zeros(memory.size(0), dtype=torch.long)
        return memory, DecoderState(hidden, cell, hidden[-1], feed, attention, attended), mask

    def embed(self, src: torch.Tensor, lengths: torch.Tensor):
        """Sentence embeddings: encoder.pooling's summary [B, rows, D_m] and its weights
        [B, rows, S]."""
        if self.pooling is None:
            raise ValueError("this model has no encoder.pooling")
        memory, mask, _ = self.encoder(src, lengths)
        return self.pooling(memory, mask)

    def attention_keys(self, memory: torch.Tensor) -> torch.Tensor | None:
        return self.attention.keys(memory) if self.attention is not None else None

    def attend(self, query, keys, memory, mask, state: DecoderState, embedded,
               constraint=None):
        """The attention of one step -> (context, weights, the type's new state, the new
        argmax). embedded: the previous tokens' embeddings. constraint (backward, forward):
        the weights may only fall on [last - backward, last + forward) around the previous
        step's argmax `last`."""
        window = None
        if constraint is not None:
            backward, forward = constraint
            position = torch.arange(mask.size(1))[None, :]
            last = state.attended[:, None]
            window = (position >= last - backward) & (position < last + forward)
        context, weights, attention = self.attention.step(query, keys, memory, mask,
                                                          state.attention, window, embedded)
        if self.context_projection is not None:
            context = self.context_projection(context)
        attended = state.attended
        if constraint is not None:  # the first maximum (torch.argmax); a row with no weight
            attended = torch.where(weights.sum(dim=-1) > 0,  # at all keeps its position
                                   weights.argmax(dim=-1), attended)
        return context, weights, attention, attended

    def decode_logits(self, tokens, state: DecoderState, memory, mask, keys=None,
                      constraint=None):
        """One step from previous tokens [B] -> (logits [B, V], new state, attention [B, S]
        or None). constraint: see attend."""
        dec = self.decoder
        if keys is None:
            keys = self.attention_keys(memory)
        embedded = dec.dropout(dec.embedding(tokens))
        if dec.start_zeros and not state.started:
            embedded = torch.zeros_like(embedded)
        weights, feed, attention, attended = None, None, state.attention, state.attended

        def attend(query):
            nonlocal attention, attended
            context, weights, attention, attended = self.attend(query, keys, memory, mask,
                                                                state, embedded, constraint)
            return context, weights

        if dec.type == "conditional":  # update, attend, update
            h0, context, weights = dec.conditional_first_layer(embedded, state, attend)
            o, hidden, cell = dec.layers_step(h0, state, first_layer=1)
            hidden = [h0] + hidden
            final = dec.bahdanau_readout(o, context, embedded)
        elif dec.type == "bahdanau":  # attend with o_{t-1} (or layer 0's s_{t-1}), then update
            context, weights = attend(state.hidden[0] if self.first_layer_query else state.output)
            o, hidden, cell = dec.layers_step(torch.cat([embedded, context], dim=-1), state)
            final = dec.bahdanau_readout(o, context, embedded)
        elif dec.type == "luong":  # update, then attend with o_t (or layer 0's s_t)
            x = torch.cat([embedded, state.feed], dim=-1) if dec.input_feeding else embedded
            o, hidden, cell = dec.layers_step(x, state)
            context, weights = attend(hidden[0] if self.first_layer_query else o)
            final = torch.cat([context, o], dim=-1)  # [c; s]
            if dec.attentional is not None:
                final = dec.attentional_activation(dec.attentional(final))
                feed = final if dec.input_feeding else None
            if dec.input_feeding and dec.feed_context:
                feed = context
        else:
            o, hidden, cell = dec.layers_step(embedded, state)
            final = o
        logits = dec.output(dec.dropout(final))
        return logits, DecoderState(hidden, cell, o, feed, attention, attended, True), weights

    def decode_step(self, tokens, state: DecoderState, memory, mask, keys=None,
                    constraint=None):
        """As decode_logits, with log-probabilities [B, V] instead of logits."""
        logits, state, weights = self.decode_logits(tokens, state, memory, mask, keys,
                                                    constraint)
        return torch.log_softmax(logits, dim=-1), state, weights

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor,
                tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: tgt_in [B, T] (BOS first) -> log-probabilities [B, T, V]."""
        memory, state, mask = self.encode(src, src_lengths)
        keys = self.attention_keys(memory)
        logits = []
        for t in range(tgt_in.size(1)):
            step_logits, state, _ = self.decode_logits(tgt_in[:, t], state, memory, mask, keys)
            logits.append(step_logits)
        return torch.log_softmax(torch.stack(logits, dim=1), dim=-1)
