"""Parameter names of `--type nematus` and `--type amun` models, which Marian saves under
Nematus' and Amun's names and renames when it loads them (src/models/nematus.h, amun.h):
the same renaming here gives every model Marian's own s2s names."""
from __future__ import annotations

import numpy as np

# items Marian drops when it loads a Nematus/Amun-named file
DROPPED = ("decoder_c_tt", "uidx", "history_errs")

_GRU_PARTS = ("U", "Ux", "W", "Wx", "b", "bx")
# Nematus' names of the conditional GRU's second cell's parts
_SECOND_CELL = ("U_nl", "Ux_nl", "Wc", "Wcx", "b_nl", "bx_nl")
# the deep output's three inputs: previous embedding, decoder state, context
_LOGIT_INPUTS = ("prev", "lstm", "ctx")

_COMMON = {
    **{f"decoder_{part}": f"decoder_cell1_{part}" for part in _GRU_PARTS},
    **{f"decoder_{old}": f"decoder_cell2_{part}" for old, part in zip(_SECOND_CELL, _GRU_PARTS)},
    **{f"ff_logit_{name}_{kind}": f"decoder_ff_logit_l1_{kind}{k}"
       for k, name in enumerate(_LOGIT_INPUTS) for kind in ("W", "b")},
    "ff_logit_W": "decoder_ff_logit_l2_W", "ff_logit_b": "decoder_ff_logit_l2_b",
    "ff_state_W": "decoder_ff_state_W", "ff_state_b": "decoder_ff_state_b",
    "Wemb_dec": "decoder_Wemb", "Wemb": "encoder_Wemb",
    # the two encoder directions: encoder_X -> encoder_bi_X, encoder_r_X -> encoder_bi_r_X
    **{f"encoder{side}_{part}": f"encoder_bi{side}_{part}"
       for side in ("", "_r") for part in _GRU_PARTS},
}

_AMUN_GAMMAS = {
    "decoder_cell1_gamma1": "decoder_cell1_gamma1", "decoder_cell1_gamma2": "decoder_cell1_gamma2",
    "ff_logit_l1_gamma0": "decoder_ff_logit_l1_gamma0",
    "ff_logit_l1_gamma1": "decoder_ff_logit_l1_gamma1",
    "ff_logit_l1_gamma2": "decoder_ff_logit_l1_gamma2",
    "ff_state_gamma": "decoder_ff_state_gamma",
    "encoder_gamma1": "encoder_bi_gamma1", "encoder_gamma2": "encoder_bi_gamma2",
    "encoder_r_gamma1": "encoder_bi_r_gamma1", "encoder_r_gamma2": "encoder_bi_r_gamma2",
}

_NEMATUS_LN = {
    "ff_state_ln_s": "decoder_ff_state_ln_s", "ff_state_ln_b": "decoder_ff_state_ln_b",
    **{f"ff_logit_{name}_ln_{kind}": f"decoder_ff_logit_l1_ln_{kind}{k}"
       for k, name in enumerate(_LOGIT_INPUTS) for kind in ("s", "b")},
}


def _nematus_map(options: dict) -> dict:
    names = dict(_COMMON)
    names.update(_NEMATUS_LN)
    for i in range(1, options["enc-cell-depth"]):  # deep transition: _drt_ numbering
        for suffix in ("_U", "_Ux", "_b", "_bx"):
            names[f"encoder{suffix}_drt_{i}"] = f"encoder_bi_cell{i + 1}{suffix}"
            names[f"encoder_r{suffix}_drt_{i}"] = f"encoder_bi_r_cell{i + 1}{suffix}"
    for i in range(3, options["dec-cell-base-depth"] + 1):
        for suffix in ("_U", "_Ux", "_b", "_bx"):
            names[f"decoder{suffix}_nl_drt_{i - 2}"] = f"decoder_cell{i}{suffix}"
    for old, new in list(names.items()):  # the cells' layer normalisation
        if old.startswith(("encoder", "decoder")):
            names[old + "_lns"] = new + "_lns"
            names[old + "_lnb"] = new + "_lnb"
    return names


def _amun_map(options: dict) -> dict:
    names = dict(_COMMON)
    names.update(_AMUN_GAMMAS)
    if options["tied-embeddings-src"] or options["tied-embeddings-all"]:
        names["Wemb"] = "Wemb"
    return names


def canonical_items(items: dict, options: dict) -> dict:
    """The model's arrays under Marian's s2s names, 1-D arrays as [1, n] rows, as Marian
    holds them after loading."""
    model_type = options["type"]
    if model_type not in ("nematus", "amun") or "decoder_c_tt" not in items:
        return dict(items)  # Marian renames only files that still carry decoder_c_tt
    names = _nematus_map(options) if model_type == "nematus" else _amun_map(options)
    renamed = {}
    for name, value in items.items():
        if name in DROPPED:
            continue
        value = np.asarray(value)
        if value.ndim == 1:
            value = value.reshape(1, -1)
        renamed[names.get(name, name)] = value
    return renamed
