"""Marian's s2s parameters -> the rnnsearch architecture and tensors (docs/convert-marian.md).

Marian keeps matrices [in, out] (x W), GRU gates [r, z] in W/U and the candidate n in
Wx/Ux, biases as [1, n] rows. Where its layer normalisation and biases sit depends on the
cell (gru, gru-nematus), on the cell's place (with input or a deep-transition cell, final
or not: src/rnn/cells.h) and, for the attention and dense layers, on whether the model is
--type nematus (Nematus' normalisation, src/rnn/attention.h, src/layers/generic.h). Every
case lands on the format's one GRU: a = W_ih x + b_ih, u = W_hh h + b_hh, each optionally
normalised (then gain and bias), r, z = sigmoid(a + u), n = tanh(a_n + r * u_n).
"""
from __future__ import annotations

import numpy as np

from ...errors import ModelError

MARIAN_EPS = 1e-9    # Marian's layer normalisation
NEMATUS_EPS = 1e-5   # Nematus' (NEMATUS_LN_EPS)

# a GRU cell's place: does it read an input, and is it "final" (Marian's flag: the bias of
# the candidate n is applied inside the reset gate)?
INPUT, FINAL_INPUT, TRANSITION, FINAL_TRANSITION = "input", "final input", "transition", \
    "final transition"


class Weights:
    """The model's arrays by Marian name; every read is recorded, so that arrays the
    architecture does not use are reported instead of silently ignored."""

    def __init__(self, items: dict, where: str):
        self.items = {k: v for k, v in items.items() if not k.startswith("special:")}
        self.where = where
        self.used: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self.items

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in self.items:
            raise ModelError(f"{self.where}: missing parameter {name!r} (shape {list(shape)})")
        value = np.asarray(self.items[name])
        if value.dtype != np.float32:
            if value.dtype.kind != "f":
                raise ModelError(f"{self.where}: parameter {name!r} has dtype {value.dtype}")
            value = value.astype(np.float32)
        if value.shape != shape:
            raise ModelError(f"{self.where}: parameter {name!r} has shape {list(value.shape)}, "
                             f"expected {list(shape)}")
        if not np.all(np.isfinite(value)):
            raise ModelError(f"{self.where}: parameter {name!r} has non-finite values")
        self.used.add(name)
        return value

    def row(self, name: str, width: int) -> np.ndarray:
        return self.get(name, (1, width))[0]

    def unused(self) -> list[str]:
        return sorted(set(self.items) - self.used)


def _gru(w: Weights, prefix: str, dim_in: int, hidden: int, place: str, layer_norm: str
         ) -> dict[str, np.ndarray]:
    """One Marian GRU cell -> the format's tensors (suffixes of the cell's name)."""
    H = hidden
    has_input = place in (INPUT, FINAL_INPUT)
    final = place in (FINAL_INPUT, FINAL_TRANSITION)
    out = {"weight_hh": np.concatenate([w.get(f"{prefix}_U", (H, 2 * H)),
                                        w.get(f"{prefix}_Ux", (H, H))], axis=1).T}
    if has_input:
        out["weight_ih"] = np.concatenate([w.get(f"{prefix}_W", (dim_in, 2 * H)),
                                           w.get(f"{prefix}_Wx", (dim_in, H))], axis=1).T
    bias = np.concatenate([w.row(f"{prefix}_b", 2 * H), w.row(f"{prefix}_bx", H)])
    if layer_norm == "none":
        out["bias_hh" if final else "bias_ih"] = bias
    elif layer_norm == "joint":
        # gru: x W and s U normalised over all three gates (gamma only), then the biases
        if has_input:
            out["norm_ih.weight"] = w.row(f"{prefix}_gamma1", 3 * H)
        out["norm_hh.weight"] = w.row(f"{prefix}_gamma2", 3 * H)
        if final:
            out["norm_hh.bias"] = bias
        elif has_input:
            out["norm_ih.bias"] = bias
        else:
            out["bias_ih"] = bias  # no input: the constant input part
    else:
        _gru_nematus_norm(w, prefix, H, place, bias, out)
    return out


def _split_norm(w: Weights, prefix: str, H: int, part: str) -> tuple[np.ndarray, np.ndarray]:
    """Nematus' normalisation of [r; z] (prefix_P) and n (prefix_Px) with scale and bias."""
    scale = np.concatenate([w.row(f"{prefix}_{part}_lns", 2 * H), w.row(f"{prefix}_{part}x_lns", H)])
    shift = np.concatenate([w.row(f"{prefix}_{part}_lnb", 2 * H), w.row(f"{prefix}_{part}x_lnb", H)])
    return scale, shift


def _gru_nematus_norm(w: Weights, prefix: str, H: int, place: str, bias: np.ndarray,
                      out: dict) -> None:
    """gru-nematus with layer normalisation (GRUNematus in src/rnn/cells.h): [r; z] and n
    normalised separately; the biases sit before or after the normalisation by place."""
    encoder = prefix.startswith("encoder")
    has_input = place in (INPUT, FINAL_INPUT)
    final = place in (FINAL_INPUT, FINAL_TRANSITION)
    transition = place in (TRANSITION, FINAL_TRANSITION)
    if has_input:
        out["norm_ih.weight"], out["norm_ih.bias"] = _split_norm(w, prefix, H, "W")
        if not final:
            out["bias_ih"] = bias  # x W + b, then normalised
    out["norm_hh.weight"], out["norm_hh.bias"] = _split_norm(w, prefix, H, "U")
    if encoder:
        if transition:
            # U' = LN(s U) + b for [r; z]; the candidate's bx outside the reset gate
            out["norm_hh.bias"] = out["norm_hh.bias"] + np.concatenate([bias[:2 * H],
                                                                        np.zeros(H, np.float32)])
            out["bias_ih"] = np.concatenate([np.zeros(2 * H, np.float32), bias[2 * H:]])
    elif final or transition:
        out["bias_hh"] = bias  # s U + b, then normalised


def _dense_norm(w: Weights, prefix: str, suffix: str, width: int, nematus: bool
                ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """A Marian dense layer's (pre-norm bias, gain, post-norm bias) with layer norm:
    Marian: LN(x W) * gamma + b; Nematus: LN(x W + b) * ln_s + ln_b."""
    bias = w.row(f"{prefix}_b{suffix}", width)
    if nematus:
        return bias, w.row(f"{prefix}_ln_s{suffix}", width), w.row(f"{prefix}_ln_b{suffix}", width)
    return None, w.row(f"{prefix}_gamma{suffix}", width), bias


def _cell_tensors(tensors: dict, name: str, cell: dict) -> None:
    for suffix, value in cell.items():
        tensors[f"{name}.{suffix}"] = value


def _encoder(w: Weights, options: dict, style: str, tensors: dict) -> dict:
    """Marian's two stacks (encoder_bi: forward, encoder_bi_r: backward), each enc-depth
    layers of enc-cell-depth cells; layers alternate direction with enc-type alternating."""
    E, H = options["dim-emb"], options["dim-rnn"]
    for stack, direction in (("bi", "forward"), ("bi_r", "backward")):
        for layer in range(options["enc-depth"]):
            for cell in range(options["enc-cell-depth"]):
                prefix = f"encoder_{stack}"
                if layer > 0:
                    prefix += f"_l{layer + 1}"
                if layer > 0 or cell > 0:
                    prefix += f"_cell{cell + 1}"
                name = f"encoder.layers.{layer}.{direction}" + (f".depth.{cell}" if cell else "")
                place = INPUT if cell == 0 else TRANSITION
                _cell_tensors(tensors, name, _gru(w, prefix, E if layer == 0 else H, H, place,
                                                  style))
    return {"embedding_size": E, "cell": "gru", "hidden_size": H,
            "num_layers": options["enc-depth"], "bidirectional": True, "merge": "concat",
            "residual": options["skip"], "gru_reset_after": True,
            "stacking": "separate" if options["enc-type"] == "bidirectional" else "alternating",
            "cell_depth": options["enc-cell-depth"], "layer_norm": style,
            "layer_norm_eps": NEMATUS_EPS if style == "split" else MARIAN_EPS}


def _decoder_cells(w: Weights, options: dict, style: str, tensors: dict) -> None:
    """Layer 0: cell1 (embedding), the attention, cell2 (context, final), cells 3.. (final
    transitions). Layers 2..dec-depth: decoder_l{i}_cell{j}, cell 1 reads the layer below."""
    E, H = options["dim-emb"], options["dim-rnn"]
    for cell in range(options["dec-cell-base-depth"]):
        place = INPUT if cell == 0 else FINAL_INPUT if cell == 1 else FINAL_TRANSITION
        name = "decoder.layers.0" + (f".depth.{cell}" if cell else "")
        _cell_tensors(tensors, name, _gru(w, f"decoder_cell{cell + 1}", E if cell == 0 else 2 * H,
                                          H, place, style))
    for layer in range(1, options["dec-depth"]):
        for cell in range(options["dec-cell-high-depth"]):
            name = f"decoder.layers.{layer}" + (f".depth.{cell}" if cell else "")
            _cell_tensors(tensors, name, _gru(w, f"decoder_l{layer + 1}_cell{cell + 1}", H, H,
                                              INPUT if cell == 0 else TRANSITION, style))


def _attention(w: Weights, options: dict, nematus: bool, tensors: dict) -> dict:
    """e_j = v . tanh(W_comb_att s' + Wc_att h_j + b_att), optionally normalised."""
    H, D = options["dim-rnn"], 2 * options["dim-rnn"]
    tensors["attention.query.weight"] = w.get("decoder_W_comb_att", (H, D)).T
    tensors["attention.key.weight"] = w.get("decoder_Wc_att", (D, D)).T
    tensors["attention.v"] = w.get("decoder_U_att", (D, 1))[:, 0]
    bias = w.row("decoder_b_att", D)
    layer_norm = options["layer-normalization"]
    if not layer_norm or nematus:
        tensors["attention.key.bias"] = bias
    if layer_norm and nematus:
        tensors["attention.key_norm.weight"] = w.row("decoder_Wc_att_lns", D)
        tensors["attention.key_norm.bias"] = w.row("decoder_Wc_att_lnb", D)
        tensors["attention.query_norm.weight"] = w.row("decoder_W_comb_att_lns", D)
        tensors["attention.query_norm.bias"] = w.row("decoder_W_comb_att_lnb", D)
    elif layer_norm:
        tensors["attention.key_norm.weight"] = w.row("decoder_att_gamma1", D)
        tensors["attention.key_norm.bias"] = bias
        tensors["attention.query_norm.weight"] = w.row("decoder_att_gamma2", D)
    return {"type": "global", "score": "additive", "size": D, "query_projection": True,
            "key_projection": True, "layer_norm": layer_norm,
            "layer_norm_eps": NEMATUS_EPS if nematus else MARIAN_EPS}


def _bridge(w: Weights, options: dict, nematus: bool, tensors: dict) -> dict:
    """s_0 = tanh(ff_state(mean_j h_j)), the same start for every decoder layer."""
    H, D = options["dim-rnn"], 2 * options["dim-rnn"]
    weight = w.get("decoder_ff_state_W", (D, H)).T
    layer_norm = options["layer-normalization"]
    for layer in range(options["dec-depth"]):
        tensors[f"bridge.layers.{layer}.hidden.weight"] = weight
        if layer_norm:
            pre, gain, post = _dense_norm(w, "decoder_ff_state", "", H, nematus)
            if pre is not None:
                tensors[f"bridge.layers.{layer}.hidden.bias"] = pre
            tensors[f"bridge.layers.{layer}.hidden_norm.weight"] = gain
            tensors[f"bridge.layers.{layer}.hidden_norm.bias"] = post
        else:
            tensors[f"bridge.layers.{layer}.hidden.bias"] = w.row("decoder_ff_state_b", H)
    return {"type": "mean", "activation": "tanh", "layer_norm": layer_norm,
            "layer_norm_eps": NEMATUS_EPS if nematus else MARIAN_EPS}


def _readout(w: Weights, options: dict, nematus: bool, tensors: dict) -> None:
    """ff_logit_l1 = tanh(sum over its three inputs of a dense layer each): input 0 the
    previous embedding, 1 the decoder state, 2 the context; the format's readout reads
    [state; context; embedding]."""
    E, H = options["dim-emb"], options["dim-rnn"]
    parts = ((1, H), (2, 2 * H), (0, E))  # (Marian's input number, width), format order
    tensors["decoder.readout.weight"] = np.concatenate(
        [w.get(f"decoder_ff_logit_l1_W{k}", (width, E)).T for k, width in parts], axis=1)
    if not options["layer-normalization"]:
        tensors["decoder.readout.bias"] = sum(w.row(f"decoder_ff_logit_l1_b{k}", E)
                                              for k, _ in parts)
        return
    norms = [_dense_norm(w, "decoder_ff_logit_l1", str(k), E, nematus) for k, _ in parts]
    if nematus:
        tensors["decoder.readout_norm.input_bias"] = np.stack([pre for pre, _, _ in norms])
    tensors["decoder.readout_norm.weight"] = np.stack([gain for _, gain, _ in norms])
    tensors["decoder.readout_norm.bias"] = np.stack([post for _, _, post in norms])


def _embeddings_and_output(w: Weights, options: dict, tensors: dict) -> None:
    E = options["dim-emb"]
    V_src, V_tgt = options["dim-vocabs"]
    shared = options["tied-embeddings-src"] or options["tied-embeddings-all"]
    source = "Wemb" if shared else "encoder_Wemb"
    target = "Wemb" if shared else "decoder_Wemb"
    tensors["encoder.embedding.weight"] = w.get(source, (V_src, E))
    tensors["decoder.embedding.weight"] = w.get(target, (V_tgt, E))
    if options["tied-embeddings"] or options["tied-embeddings-all"]:
        tensors["decoder.output.weight"] = tensors["decoder.embedding.weight"]
    elif w.has("decoder_ff_logit_l2_W"):  # older files: [dim-emb, V], not transposed
        tensors["decoder.output.weight"] = w.get("decoder_ff_logit_l2_W", (E, V_tgt)).T
    else:
        tensors["decoder.output.weight"] = w.get("decoder_ff_logit_l2_Wt", (V_tgt, E))
    if not options["output-omit-bias"]:
        tensors["decoder.output.bias"] = w.row("decoder_ff_logit_l2_b", V_tgt)


def architecture(items: dict, options: dict, where: str) -> tuple[dict, dict]:
    """(architecture sections of config.json, tensors) of a checked Marian model."""
    w = Weights(items, where)
    nematus = options["type"] == "nematus"  # Nematus' normalisation in attention and dense
    styles = {}
    for side in ("enc", "dec"):
        styles[side] = "none" if not options["layer-normalization"] else \
            "split" if options[f"{side}-cell"] == "gru-nematus" else "joint"
    tensors: dict[str, np.ndarray] = {}
    encoder = _encoder(w, options, styles["enc"], tensors)
    _decoder_cells(w, options, styles["dec"], tensors)
    attention = _attention(w, options, nematus, tensors)
    bridge = _bridge(w, options, nematus, tensors)
    _readout(w, options, nematus, tensors)
    _embeddings_and_output(w, options, tensors)
    unused = w.unused()
    if unused:
        raise ModelError(f"{where}: parameters this architecture does not use: "
                         f"{', '.join(unused[:8])}{' ...' if len(unused) > 8 else ''}")
    E, H = options["dim-emb"], options["dim-rnn"]
    decoder = {"type": "conditional", "embedding_size": E, "cell": "gru", "hidden_size": H,
               "num_layers": options["dec-depth"], "residual": options["skip"],
               "gru_reset_after": True, "start_embedding": "zeros",
               "base_cell_depth": options["dec-cell-base-depth"],
               "cell_depth": options["dec-cell-high-depth"], "layer_norm": styles["dec"],
               "layer_norm_eps": NEMATUS_EPS if styles["dec"] == "split" else MARIAN_EPS,
               "readout": "tanh", "readout_size": E,
               "readout_inputs": ["state", "context", "embedding"],
               "readout_layer_norm": options["layer-normalization"],
               "readout_layer_norm_eps": NEMATUS_EPS if nematus else MARIAN_EPS}
    sections = {"encoder": encoder, "bridge": bridge, "attention": attention, "decoder": decoder}
    return sections, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
