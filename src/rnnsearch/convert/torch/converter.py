"""`rnnsearch convert --from torch`: a plain PyTorch state_dict plus two small JSON files.

  --config arch.json    the architecture: the "encoder", "bridge", "attention" and "decoder"
                        sections of config.json (docs/model-format.md); may also hold
                        "special_tokens", "source", "target" and "decoding", merged field
                        by field with the options (the same field set to two different
                        values is an error)
  --mapping map.json    which of your modules plays which role, e.g.
    {"encoder.embedding": "enc.emb",      "encoder.rnn": "enc.lstm",
     "decoder.embedding": "dec.emb",      "decoder.rnn": "dec.cell",
     "attention.key": "dec.attn.W",       "decoder.output": "dec.generator",
     "decoder.readout": {"module": "dec.readout",
                         "concat_order": ["embedding", "state", "context"]}}

Roles (keys) and what their modules must be:
  encoder.embedding, decoder.embedding   nn.Embedding                (weight)
  encoder.rnn     nn.LSTM / nn.GRU / nn.RNN covering all layers (weight_ih_l0,
                  weight_ih_l0_reverse, ...), or a list with one module per layer
  decoder.rnn     nn.LSTM / nn.GRU / nn.RNN, or nn.LSTMCell / nn.GRUCell / nn.RNNCell, or
                  a list of cells (one per layer)
  bridge, bridge.cell       nn.Linear, or a list (one per decoder layer)
  attention.key, attention.query        nn.Linear (for "general" attention a query-side
                  projection q' = W q, as OpenNMT's linear_in, is given as attention.query)
  attention.concat          nn.Linear over [query; memory] (Luong's "concat" score)
  attention.v     nn.Linear(A, 1) or a parameter of shape [A]; attention.scale a parameter
  decoder.attentional, decoder.readout, decoder.output    nn.Linear
  attention.location.conv   the location convolution: nn.Conv1d(N_in, C, k) or
                  nn.Conv2d(1, C, (N_in, k)) (ESPnet), no bias
  attention.location.projection   nn.Linear(C, A); attention.location.lstm nn.LSTMCell
  attention.coverage        nn.Linear(N_c, A) (ESPnet's wvec); attention.coverage.memory,
                  .query, .previous nn.Linear, .attention a [G N_c] parameter or
                  nn.Linear(1, G N_c) (learned coverage updates)
  attention.gate, .value, .key_value, .position, .position.v, .energy_gain, .energy_bias,
  .chunk.*, encoder.pooling.*     the options' roles: attention_roles.py
A value is a module name (the state_dict key prefix), a parameter name, or an object
{"module": NAME, "concat_order": [...]} when the module reads a concatenation in another
order than the canonical one. Part names: embedding, context, state, feed (the previous
attentional vector), forward, backward (bridge), query, memory (attention.concat).
Canonical orders: decoder.rnn [embedding, context] (bahdanau) or [embedding, feed] (luong
input feeding); decoder.attentional [context, state]; decoder.readout and a readout-less
bahdanau decoder.output [state, context, embedding] (only those listed in
readout_inputs); bridge [forward, backward]. A part left out of concat_order gets zero
weights (Bahdanau's bridge reads only the backward state: "concat_order": ["backward"]).
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from ...errors import ModelError
from ...model_kind import checkpoint_framework, convert_hint
from ...safe_files import load_json, require_regular_file
from ..common.checkpoint import to_numpy
from ..common.external_vocab import (add_vocab_arguments, check_vocabularies, given_sections,
                                     mark_guessed, merge_sections, read_vocab,
                                     tokenizer_files)
from . import attention_roles, feature_roles, stateful
from ..common.guard import input_errors
from ..common.read_check import checked_in_child

DESCRIPTION = "PyTorch state_dict + role mapping + architecture JSON"

ROLES = ("encoder.embedding", "encoder.rnn", "bridge", "bridge.cell", "attention.key",
         "attention.query", "attention.concat", "attention.v", "attention.scale",
         "decoder.embedding", "decoder.rnn", "decoder.attentional", "decoder.readout",
         "decoder.output") + attention_roles.ROLES + feature_roles.ROLES + stateful.ROLES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("PyTorch checkpoint")
    g.add_argument("--checkpoint", required=True, metavar="MODEL.pt",
                   help="a state_dict saved with torch.save (or a dict holding one under "
                        "'state_dict', 'model_state_dict' or 'model')")
    g.add_argument("--mapping", required=True, metavar="MAPPING.json",
                   help="JSON: role -> your module name (see docs/convert-torch.md)")
    g.add_argument("--config", required=True, metavar="ARCH.json",
                   help="JSON: the encoder, bridge, attention and decoder sections of "
                        "config.json")
    g.add_argument("--state-dict-key", default=None, metavar="KEY",
                   help="the key of the state_dict inside the checkpoint, if not found "
                        "automatically")
    # a features model (source.kind 'features') has no source vocabulary
    add_vocab_arguments(parser, required=True, source_required=False)


@input_errors("PyTorch converter")
def convert(args: argparse.Namespace) -> None:
    state_dict = load_checkpoint(args.checkpoint, args.state_dict_key)
    mapping = _read_json(args.mapping, "mapping")
    config = _read_json(args.config, "architecture config")
    # the file's special_tokens/source/target and the options merge field by field
    merge_sections(config, given_sections(args), args.config)
    source_vocab = read_vocab(args.source_vocab) if args.source_vocab else None
    convert_state_dict(state_dict, mapping, config, source_vocab,
                       read_vocab(args.target_vocab), args.output, tokenizer_files(args))


def _read_json(path: str, what: str) -> dict:
    value = load_json(path, f"{what} file")
    if not isinstance(value, dict):
        raise ModelError(f"{path}: the {what} must be a JSON object")
    return value


@checked_in_child("checkpoint")
def load_checkpoint(path: str, key: str | None = None) -> dict:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelError("reading a PyTorch checkpoint needs torch (pip install "
                         "'rnnsearch[torch]', which pins the CPU build the project tests); "
                         "from Python, convert_state_dict also takes NumPy arrays") from e
    if not os.path.exists(path):
        raise ModelError(f"checkpoint not found: {path}")
    require_regular_file(path, "checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        framework = checkpoint_framework(path)
        if framework:   # a training checkpoint, which pickles more than tensors
            raise ModelError(f"{path} is a checkpoint of {framework}, not a state_dict: "
                             f"{convert_hint(framework, path)}") from e
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"cannot load {path} as a state_dict (torch.load with "
                         f"weights_only=True: {first_line})") from e
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            raise ModelError(f"{path}: no '{key}' in the checkpoint")
        obj = obj[key]
    elif isinstance(obj, dict) and not any(hasattr(v, "shape") for v in obj.values()):
        for k in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(k), dict):
                obj = obj[k]
                break
    if not isinstance(obj, dict) or not any(hasattr(v, "shape") for v in obj.values()):
        raise ModelError(f"{path}: not a state_dict (a dict of tensors); use --state-dict-key")
    return obj


def _array(value, name: str) -> np.ndarray:
    if hasattr(value, "detach"):
        return to_numpy(value, f"state_dict['{name}']")   # bounded: may be a stride-0 view
    return np.asarray(value, dtype=np.float32)


class _Weights:
    def __init__(self, state_dict: dict):
        self.sd = {k: _array(v, k) for k, v in state_dict.items() if hasattr(v, "shape")}
        self.used = set()

    def get(self, name: str, role: str, optional: bool = False):
        if name in self.sd:
            self.used.add(name)
            return self.sd[name]
        if optional:
            return None
        prefix = name.rsplit(".", 1)[0]
        near = sorted(k for k in self.sd if k.startswith(prefix + "."))[:6] or \
            sorted(self.sd)[:6]
        raise ModelError(f"mapping '{role}': the checkpoint has no tensor '{name}' "
                         f"(tensors there include {near})")


class _Mapping:
    """The role mapping; remembers which roles the architecture asked for."""

    def __init__(self, mapping: dict):
        unknown = set(mapping) - set(ROLES)
        if unknown:
            raise ModelError(f"mapping: unknown role(s) {sorted(unknown)}; roles are "
                             f"{list(ROLES)}")
        self.mapping = mapping
        self.seen = set()

    def spec(self, role: str):
        """(module name or list, concat order or None) of a role, or (None, None)."""
        self.seen.add(role)
        value = self.mapping.get(role)
        if value is None:
            return None, None
        if isinstance(value, dict):
            if feature_roles.is_summed(value):
                return value, None
            unknown = set(value) - {"module", "concat_order"}
            if unknown or "module" not in value:
                raise ModelError(f"mapping '{role}': expected {{\"module\": ..., "
                                 f"\"concat_order\": [...]}}, got keys {sorted(value)}")
            value, order = value["module"], value.get("concat_order")
        else:
            order = None
        if isinstance(value, str) or (isinstance(value, list) and value and
                                      all(isinstance(v, str) for v in value)):
            return value, order
        raise ModelError(f"mapping '{role}': expected a module name, a list of them or an "
                         "object")

    def require(self, role: str, why: str):
        module, order = self.spec(role)
        if module is None:
            raise ModelError(f"the mapping lacks '{role}' ({why})")
        return module, order

    def check_all_used(self):
        unused = set(self.mapping) - self.seen
        if unused:
            raise ModelError(f"mapping: role(s) {sorted(unused)} are not used by this "
                             "architecture (check the config: bridge type, attention score, "
                             "readout)")


def _reorder(weight: np.ndarray, order, canonical: list, widths: dict, role: str):
    """Columns of `weight` from the user's concatenation order to the canonical one."""
    if order is None:
        return weight
    if not isinstance(order, list) or not all(isinstance(p, str) for p in order) or \
            len(set(order)) != len(order) or any(p not in widths for p in order):
        raise ModelError(f"mapping '{role}': concat_order {order!r} must list distinct parts "
                         f"of {list(canonical)}")
    total = sum(widths[p] for p in order)
    if weight.shape[1] != total:
        raise ModelError(f"mapping '{role}': the module reads {weight.shape[1]} inputs but "
                         f"concat_order {order} adds up to {total}")
    blocks, start = {}, 0
    for part in order:
        blocks[part] = weight[:, start:start + widths[part]]
        start += widths[part]
    return np.hstack([blocks.get(p, np.zeros((weight.shape[0], widths[p]), np.float32))
                      for p in canonical])


def _linear(w: _Weights, module: str, role: str, out: dict, prefix: str, order=None,
            canonical=None, widths=None):
    weight = w.get(f"{module}.weight", role)
    if canonical is not None:
        weight = _reorder(weight, order, canonical, widths, role)
    elif order is not None:
        raise ModelError(f"mapping '{role}': concat_order is not used for this role")
    out[f"{prefix}.weight"] = weight
    bias = w.get(f"{module}.bias", role, optional=True)
    if bias is not None:
        out[f"{prefix}.bias"] = bias


def _rnn_params(w: _Weights, module: str, role: str, layer: int | None, reverse: bool):
    """weight_ih, weight_hh, bias_ih, bias_hh of an nn.LSTM/GRU/RNN layer (layer given) or
    an nn.*Cell (layer None)."""
    suffix = "" if layer is None else f"_l{layer}" + ("_reverse" if reverse else "")
    return [w.get(f"{module}.{n}{suffix}", role, optional=n.startswith("bias"))
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def _put_rnn(out: dict, prefix: str, params):
    for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), params):
        if value is not None:
            out[f"{prefix}.{name}"] = value


def _is_multilayer(w: _Weights, module: str) -> bool:
    return f"{module}.weight_ih_l0" in w.sd


@input_errors("PyTorch converter")
def convert_state_dict(state_dict: dict, mapping: dict, config: dict, source_vocab: list | None,
                       target_vocab: list, output: str, files: dict | None = None) -> dict:
    """Write a model directory from a state_dict (tensors or arrays), a role mapping and
    an architecture config (see the module docstring); returns the written config.
    files: tokenizer files to copy in (convert.common.tokenizer_options)."""
    from ...model_dir import write_model_dir
    from ...model_spec import FORMAT_NAME, FORMAT_VERSION, Dimensions, normalize_config

    m = _Mapping(mapping)
    config = {k: dict(v) if isinstance(v, dict) else v for k, v in config.items()}
    config.setdefault("format", FORMAT_NAME)
    config.setdefault("format_version", FORMAT_VERSION)
    mark_guessed(config, "a state_dict records no tokenizer and the architecture file "
                         "names none")
    cfg = normalize_config(config)
    dims = Dimensions.of(cfg)
    enc, br, att, dec = cfg["encoder"], cfg["bridge"], cfg["attention"], cfg["decoder"]
    w = _Weights(state_dict)
    T = {}

    # embeddings, or the feature frames' projections
    feature_roles.source_tensors(w, m, cfg, T, _linear)
    module, _ = m.require("decoder.embedding", "always needed")
    T["decoder.embedding.weight"] = w.get(f"{module}.weight", "decoder.embedding")

    # encoder RNN
    module, _ = m.require("encoder.rnn", "always needed") if enc["num_layers"] else ([], None)
    directions = [("forward", False)] + ([("backward", True)] if enc["bidirectional"] else [])
    per_layer = module if isinstance(module, list) else [module] * enc["num_layers"]
    if len(per_layer) != enc["num_layers"]:
        raise ModelError(f"mapping 'encoder.rnn': {len(per_layer)} modules for "
                         f"{enc['num_layers']} layers")
    for layer, name in enumerate(per_layer):
        index = layer if not isinstance(module, list) else 0
        for direction, reverse in directions:
            _put_rnn(T, f"encoder.layers.{layer}.{direction}",
                     _rnn_params(w, name, "encoder.rnn", index, reverse))

    # bridge
    if br["from"] == "all_layers":  # concat_order names one layer's forward/backward parts
        raise ModelError("bridge.from = 'all_layers' is not supported by this converter")
    if br["type"] in ("dense", "mean", "pooling"):
        H_e = enc["hidden_size"]
        widths = {"forward": H_e, "backward": H_e} if br["type"] == "dense" else \
            {"memory": dims.memory_width} if br["type"] == "mean" else \
            {"pooled": dims.pooled_width}
        canonical = ["forward", "backward"][:1 + int(enc["bidirectional"])] \
            if br["type"] == "dense" else list(widths)
        states = ["hidden"] + (["cell"] if dec["cell"] == "lstm" and
                               br["lstm_cell"] == "bridged" else [])
        for state in states:
            role = "bridge" if state == "hidden" else "bridge.cell"
            module, order = m.require(role, f"bridge type '{br['type']}'")
            names = module if isinstance(module, list) else [module] * dec["num_layers"]
            if len(names) != dec["num_layers"]:
                raise ModelError(f"mapping '{role}': {len(names)} modules for "
                                 f"{dec['num_layers']} decoder layers")
            for layer, name in enumerate(names):
                _linear(w, name, role, T, f"bridge.layers.{layer}.{state}", order,
                        canonical, widths)

    # attention
    v_bias = None
    if att is not None:
        H_d = dec["hidden_size"]
        key_rows = H_d if att["score"] == "general" else \
            att["size"] if att["score"] == "additive" and att["key_projection"] else 0
        attention_roles.split_key_value(w, m, att, key_rows, T)
        if att["score"] == "dot" and m.mapping.get("attention.scale"):
            name, _ = m.spec("attention.scale")
            T["attention.scale"] = w.get(name, "attention.scale").reshape(1)
        elif att["score"] == "general" and "attention.key.weight" not in T:
            key, _ = m.spec("attention.key")
            query, _ = m.spec("attention.query")
            if (key is None) == (query is None):
                raise ModelError("general attention needs exactly one of 'attention.key' (W "
                                 "applied to the memory) or 'attention.query' (W applied to "
                                 "the query, as OpenNMT-py's linear_in)")
            if key is not None:
                _linear(w, key, "attention.key", T, "attention.key")
            else:
                weight = w.get(f"{query}.weight", "attention.query")
                bias = w.get(f"{query}.bias", "attention.query", optional=True)
                if bias is not None and np.any(bias):
                    raise ModelError("mapping 'attention.query': a query-side projection with "
                                     "a bias cannot be expressed as general attention")
                T["attention.key.weight"] = np.ascontiguousarray(weight.T)
        elif att["score"] == "additive" and att["type"] != "multi_head":  # (stateful.py)
            concat, order = m.spec("attention.concat")
            if concat is not None:
                A = att["size"]
                weight = _reorder(w.get(f"{concat}.weight", "attention.concat"),
                                  order or ["query", "memory"], ["query", "memory"],
                                  {"query": H_d, "memory": dims.memory_width},
                                  "attention.concat")
                T["attention.query.weight"] = weight[:, :H_d]
                T["attention.key.weight"] = weight[:, H_d:]
                bias = w.get(f"{concat}.bias", "attention.concat", optional=True)
                if bias is not None:
                    T["attention.query.bias"] = bias
                if not (att["query_projection"] and att["key_projection"]) or A != weight.shape[0]:
                    raise ModelError("mapping 'attention.concat' needs additive attention with "
                                     "both projections and size = the module's output size")
            else:
                for part, flag in (("key", "key_projection"), ("query", "query_projection")):
                    if att[flag] and f"attention.{part}.weight" not in T:
                        name, _ = m.require(f"attention.{part}",
                                           f"additive attention with {flag}")
                        _linear(w, name, f"attention.{part}", T, f"attention.{part}")
            v, _ = m.spec("attention.v")
            if v is not None:
                # an nn.Linear(A, 1): its bias shifts all scores equally, so it is dropped,
                # except from a monotonic energy (attention_roles: it joins r)
                T["attention.v"], v_bias = attention_roles.vector(w, v, "attention.v")
        stateful.stateful_tensors(w, m, att, T)
    attention_roles.option_tensors(w, m, cfg, v_bias, T, _linear)

    # decoder RNN
    module, order = m.require("decoder.rnn", "always needed")
    E_t = dec["embedding_size"]
    widths = {"embedding": E_t, "context": dims.context_width, "feed": dims.feed_width}
    canonical = ["embedding"] + (["context"] if dec["type"] == "bahdanau" else
                                 ["feed"] if dec["type"] == "luong" and dec["input_feeding"]
                                 else [])
    if isinstance(module, list):
        cells = module
    elif _is_multilayer(w, module):
        cells = None
    else:
        cells = [module]
    if cells is not None and len(cells) != dec["num_layers"]:
        raise ModelError(f"mapping 'decoder.rnn': {len(cells)} cells for {dec['num_layers']} "
                         "layers")
    for layer in range(dec["num_layers"]):
        params = _rnn_params(w, cells[layer], "decoder.rnn", None, False) if cells else \
            _rnn_params(w, module, "decoder.rnn", layer, False)
        if layer == 0:
            params[0] = _reorder(params[0], order, canonical, widths, "decoder.rnn")
        _put_rnn(T, f"decoder.layers.{layer}", params)

    # attentional / readout / output layers
    H_d = dec["hidden_size"]
    parts = {"state": H_d, "context": dims.context_width, "embedding": E_t}
    if dec["type"] == "luong" and dec["attentional_layer"]:
        name, order = m.require("decoder.attentional", "luong with attentional_layer")
        _linear(w, name, "decoder.attentional", T, "decoder.attentional", order,
                ["context", "state"], parts)
    if dec["type"] == "bahdanau" and dec["readout"] != "none":
        name, order = m.require("decoder.readout", f"readout '{dec['readout']}'")
        if feature_roles.is_summed(name):
            feature_roles.summed_readout(w, name, dec["readout_inputs"], parts,
                                         dec["readout_size"], T)
        else:
            _linear(w, name, "decoder.readout", T, "decoder.readout", order,
                    dec["readout_inputs"], parts)
    name, order = m.require("decoder.output", "always needed")
    if dec["type"] == "bahdanau" and dec["readout"] == "none":
        _linear(w, name, "decoder.output", T, "decoder.output", order, dec["readout_inputs"],
                parts)
    elif dec["type"] == "luong" and not dec["attentional_layer"]:
        _linear(w, name, "decoder.output", T, "decoder.output", order, ["context", "state"],
                parts)
    else:
        _linear(w, name, "decoder.output", T, "decoder.output", order)

    m.check_all_used()
    modules = set()
    for value in mapping.values():
        name = feature_roles.summed_modules(value) if feature_roles.is_summed(value) else \
            value.get("module") if isinstance(value, dict) else value
        modules.update(name if isinstance(name, list) else [name])
    left = sorted(k for k in w.sd if k not in w.used and
                  any(k.startswith(f"{mod}.") for mod in modules))
    if left:
        raise ModelError(f"the mapped modules have tensors this architecture does not use: "
                         f"{left[:8]} (more layers or directions than the config says, an "
                         "LSTM projection (proj_size), or a module mapped to the wrong role?)")
    source_vocab = None if source_vocab is None else list(source_vocab)
    check_vocabularies(cfg, source_vocab, list(target_vocab),
                       T["encoder.embedding.weight"].shape[0]
                       if "encoder.embedding.weight" in T else None,
                       T["decoder.embedding.weight"].shape[0],
                       T["decoder.output.weight"].shape[0])
    write_model_dir(output, config, T, source_vocab, list(target_vocab), files=files)
    return cfg
