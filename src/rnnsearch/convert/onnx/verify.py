"""A small NumPy implementation of the canonical model (docs/model-format.md), used by the
ONNX converter to check that the model directory it is about to write computes what the
ONNX graphs compute on the probe inputs. Covers what the ONNX converter can produce
(no residual layers)."""
from __future__ import annotations

import numpy as np

from ...model_spec import normalize_config


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _act(name, x):
    return {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0),
            "identity": lambda v: v}[name](x)


def cell_step(kind, reset_after, x, h, c, T, prefix):
    w_ih, w_hh = T[f"{prefix}.weight_ih"], T[f"{prefix}.weight_hh"]
    b_ih = T.get(f"{prefix}.bias_ih", np.zeros(w_ih.shape[0]))
    b_hh = T.get(f"{prefix}.bias_hh", np.zeros(w_hh.shape[0]))
    gi = x @ w_ih.T + b_ih
    if kind == "lstm":
        gates = gi + h @ w_hh.T + b_hh
        i, f, g, o = np.split(gates, 4, axis=-1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c), c
    if kind == "gru":
        H = h.shape[-1]
        gh = h @ w_hh.T + b_hh
        r = _sigmoid(gi[..., :H] + gh[..., :H])
        z = _sigmoid(gi[..., H:2 * H] + gh[..., H:2 * H])
        if reset_after:
            n = np.tanh(gi[..., 2 * H:] + r * gh[..., 2 * H:])
        else:
            n = np.tanh(gi[..., 2 * H:] + (r * h) @ w_hh[2 * H:].T + b_hh[2 * H:])
        return (1 - z) * n + z * h, None
    pre = gi + h @ w_hh.T + b_hh
    return (np.tanh(pre) if kind == "rnn_tanh" else np.maximum(pre, 0.0)), None


class Reference:
    def __init__(self, config: dict, tensors: dict):
        self.c = normalize_config(config)
        self.T = {k: np.asarray(v, np.float64) for k, v in tensors.items()}

    def encode(self, ids: np.ndarray):
        """ids [B, S] -> memory [B, S, D_m], finals[layer] = (h per direction, c per dir)."""
        enc, T = self.c["encoder"], self.T
        x = T["encoder.embedding.weight"][ids]
        B, S = ids.shape
        H = enc["hidden_size"]
        dirs = ("forward", "backward") if enc["bidirectional"] else ("forward",)
        finals = []
        for layer in range(enc["num_layers"]):
            outs, hs, cs = [], [], []
            for d in dirs:
                h, c = np.zeros((B, H)), np.zeros((B, H))
                steps = range(S) if d == "forward" else range(S - 1, -1, -1)
                y = np.zeros((B, S, H))
                for t in steps:
                    h, c2 = cell_step(enc["cell"], enc["gru_reset_after"], x[:, t], h, c, T,
                                      f"encoder.layers.{layer}.{d}")
                    c = c2 if c2 is not None else c
                    y[:, t] = h
                outs.append(y)
                hs.append(h)
                cs.append(c if enc["cell"] == "lstm" else None)
            x = outs[0] if len(outs) == 1 else (
                np.concatenate(outs, -1) if enc["merge"] == "concat" else outs[0] + outs[1])
            finals.append((hs, cs))
        return x, finals

    def _merged(self, states):
        if states[0] is None:
            return None
        if len(states) == 1:
            return states[0]
        return np.concatenate(states, -1) if self.c["encoder"]["merge"] == "concat" \
            else states[0] + states[1]

    def bridge(self, memory, finals):
        """[(h, c)] per decoder layer."""
        br, dec, T = self.c["bridge"], self.c["decoder"], self.T
        B = memory.shape[0]
        Hd = dec["hidden_size"]
        out = []
        for layer in range(dec["num_layers"]):
            k = layer if br["from"] == "matching_layer" else len(finals) - 1
            hs, cs = finals[k] if finals else ([], [])
            c = np.zeros((B, Hd))
            if br["type"] == "zeros":
                h = np.zeros((B, Hd))
            elif br["type"] == "last":
                h = self._merged(hs)
                if br["lstm_cell"] == "bridged" and cs and cs[0] is not None:
                    c = self._merged(cs)
            else:
                f = memory.mean(axis=1) if br["type"] == "mean" else np.concatenate(hs, -1)
                p = f"bridge.layers.{layer}"
                h = _act(br["activation"], f @ T[f"{p}.hidden.weight"].T
                         + T.get(f"{p}.hidden.bias", 0.0))
                if br["lstm_cell"] == "bridged" and dec["cell"] == "lstm":
                    fc = memory.mean(axis=1) if br["type"] == "mean" else np.concatenate(cs, -1)
                    c = _act(br["activation"], fc @ T[f"{p}.cell.weight"].T
                             + T.get(f"{p}.cell.bias", 0.0))
            if br["lstm_cell"] == "copy_hidden":
                c = h
            out.append((h, c))
        return out

    def attend(self, query, memory):
        att, T = self.c["attention"], self.T
        if att["score"] in ("dot", "scaled_dot"):
            e = np.einsum("bd,bsd->bs", query, memory)
            if att["score"] == "scaled_dot":
                e = e / np.sqrt(query.shape[-1])
            elif "attention.scale" in T:
                e = e * T["attention.scale"][0]
        elif att["score"] == "general":
            keys = memory @ T["attention.key.weight"].T + T.get("attention.key.bias", 0.0)
            e = np.einsum("bd,bsd->bs", query, keys)
        else:
            keys = memory @ T["attention.key.weight"].T + T.get("attention.key.bias", 0.0) \
                if att["key_projection"] else memory
            q = query @ T["attention.query.weight"].T + T.get("attention.query.bias", 0.0) \
                if att["query_projection"] else query
            t = np.tanh(q[:, None, :] + keys)
            e = t @ T["attention.v"] if "attention.v" in T else t.sum(-1)
        e = e - e.max(axis=1, keepdims=True)
        a = np.exp(e)
        a = a / a.sum(axis=1, keepdims=True)
        return a, np.einsum("bs,bsd->bd", a, memory)

    def step(self, tokens, states, feed, memory):
        """-> logits [B, V], new states [(h, c)], attentional vector, attention [B, S]."""
        dec, T = self.c["decoder"], self.T
        emb = T["decoder.embedding.weight"][tokens]
        new, a, ctx, feed_out = [], None, None, None
        if dec["type"] == "bahdanau":
            a, ctx = self.attend(states[-1][0], memory)
            x = np.concatenate([emb, ctx], -1)
        elif dec["type"] == "luong" and dec["input_feeding"]:
            x = np.concatenate([emb, feed], -1)
        else:
            x = emb
        for layer, (h, c) in enumerate(states):
            h, c2 = cell_step(dec["cell"], dec["gru_reset_after"], x, h, c, T,
                              f"decoder.layers.{layer}")
            new.append((h, c2))
            x = h
        s = x
        if dec["type"] == "luong":
            a, ctx = self.attend(s, memory)
            cs = np.concatenate([ctx, s], -1)
            if dec["attentional_layer"]:
                feed_out = np.tanh(cs @ T["decoder.attentional.weight"].T
                                   + T.get("decoder.attentional.bias", 0.0))
                r = feed_out
            else:
                r = cs
        elif dec["type"] == "bahdanau":
            parts = {"state": s, "context": ctx, "embedding": emb}
            r = np.concatenate([parts[i] for i in dec["readout_inputs"]], -1)
            if dec["readout"] != "none":
                r = r @ T["decoder.readout.weight"].T + T.get("decoder.readout.bias", 0.0)
                if dec["readout"] == "tanh":
                    r = np.tanh(r)
                elif dec["readout"] == "maxout":
                    r = r.reshape(r.shape[0], -1, 2).max(-1)
        else:
            r = s
        logits = r @ T["decoder.output.weight"].T + T.get("decoder.output.bias", 0.0)
        return logits, new, feed_out, a


def log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))
