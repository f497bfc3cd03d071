"""`rnnsearch convert --from onnx`: an encoder graph and a decoder-step graph, as exported
by torch.onnx.export (TorchScript or dynamo exporter) or tf2onnx, to a model directory.

The encoder graph maps source ids [batch, length] (or [length, batch]; an extra integer
[batch] input is taken as the source lengths) to the memory and, usually, final states.
The decoder-step graph maps the previous target token, the previous states (and the
previous attentional vector for Luong input feeding) and the memory to the logits (or
log-probabilities) and new states. Decoder inputs that carry encoder outputs are matched
by name (or --link DEC=ENC); the memory is also found by shape. How the architecture is
read from the graphs, and what is supported, is in docs/convert-onnx.md.

Every conversion is checked: the converted model is run in NumPy on the same probe inputs
as the ONNX graphs (onnx.reference) and must reproduce their memory, initial states,
attention weights and log-probabilities, or the conversion fails.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from ...errors import ModelError
from ...limits import MAX_VOCAB
from ...safe_files import require_regular_file
from ..common.external_vocab import (add_vocab_arguments, check_vocabularies, read_vocab,
                                     sections, tokenizer_files, vocab_from_metadata)
from ..common.guard import input_errors
from ..common.one_hot import add_unknown_entry
from .one_hot import check_multiplied, is_float, one_hot_values, one_hot_width, token_ids

DESCRIPTION = "ONNX encoder + decoder-step graphs (torch.onnx.export, tf2onnx)"

VOCAB_KEYS = {"source": ("source_vocabulary", "source_vocab", "src_vocab"),
              "target": ("target_vocabulary", "target_vocab", "tgt_vocab")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("ONNX graphs")
    g.add_argument("--encoder", required=True, metavar="ENC.onnx",
                   help="encoder graph: source ids in; memory and final states out")
    g.add_argument("--decoder", required=True, metavar="DEC.onnx",
                   help="decoder-step graph: previous token, states and memory in; logits or "
                        "log-probabilities and new states out")
    g.add_argument("--link", action="append", default=[], metavar="DEC_INPUT=ENC_OUTPUT",
                   help="the decoder input DEC_INPUT receives the encoder output ENC_OUTPUT "
                        "(default: inputs and outputs of equal names; the memory is also "
                        "found by its shape). Repeatable")
    g.add_argument("--zero-state", action="append", default=[], metavar="DEC_INPUT",
                   help="the decoder state input DEC_INPUT starts at zeros (the decoder is not "
                        "initialised from the encoder). Repeatable")
    add_vocab_arguments(parser, required=False)


@input_errors("ONNX converter")
def convert(args: argparse.Namespace) -> None:
    links = {}
    for item in args.link:
        if "=" not in item:
            raise ModelError(f"--link {item!r}: expected DEC_INPUT=ENC_OUTPUT")
        dec, enc = item.split("=", 1)
        links[dec] = enc
    convert_onnx(args.encoder, args.decoder, args.output,
                 source_vocab=args.source_vocab, target_vocab=args.target_vocab,
                 links=links, zero_states=args.zero_state, options=args)


@input_errors("ONNX converter")
def convert_onnx(encoder: str, decoder: str, output: str, source_vocab=None, target_vocab=None,
                 links: dict | None = None, zero_states=(), options=None) -> dict:
    """Convert; returns the written config. source_vocab / target_vocab: a file path, a list
    of tokens, or None to read them from the graphs' metadata. `options`: an object with the
    attributes of the CLI's vocabulary options (special tokens, tokenizers), or None."""
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelError("the ONNX converter needs the 'onnx' package: "
                         "pip install 'rnnsearch[onnx]'") from e
    from .budget import check_initializers
    from .graph import check_model

    models = {}
    for tag, path in (("encoder", encoder), ("decoder", decoder)):
        if not os.path.exists(path):
            raise ModelError(f"{tag} graph not found: {path}")
        require_regular_file(path, f"{tag} graph")
        try:
            models[tag] = onnx.load(path)
        except Exception as e:
            raise ModelError(f"cannot read the {tag} graph {path}: {e}") from e
        check_initializers(models[tag], tag)
        check_model(models[tag], tag)
    vocabs = {}
    for side, given in (("source", source_vocab), ("target", target_vocab)):
        if isinstance(given, (list, tuple)):
            vocabs[side] = list(given)
        elif given:
            vocabs[side] = read_vocab(given)
        else:
            found = vocab_from_metadata(models["encoder"], VOCAB_KEYS[side]) or \
                vocab_from_metadata(models["decoder"], VOCAB_KEYS[side])
            if found is None:
                raise ModelError(f"no {side} vocabulary: pass --{side}-vocab FILE (or store it "
                                 f"in the graph metadata under '{VOCAB_KEYS[side][0]}')")
            vocabs[side] = found
    base = sections(options if options is not None else argparse.Namespace())
    config, tensors = analyze(models["encoder"], models["decoder"], dict(links or {}),
                              set(zero_states or ()), base, vocabs)
    from ...model_dir import write_model_dir
    write_model_dir(output, config, tensors, vocabs["source"], vocabs["target"],
                    files=tokenizer_files(options) if options is not None else None)
    return config


# ---- probe run ------------------------------------------------------------------------
def _all_dims(models) -> set[int]:
    from .graph import input_infos
    dims = set()
    for m in models:
        for init in m.graph.initializer:
            dims.update(int(d) for d in init.dims)
        for _, _, shape in input_infos(m):
            dims.update(d for d in shape if isinstance(d, int))
    return dims


def _pick(candidates, taken):
    for c in candidates:
        if c not in taken:
            return c
    raise ModelError("cannot choose probe sizes distinct from the model's dimensions")


def _embedding_rows(model, input_name: str) -> int | None:
    """Rows of the table that a Gather indexes with (a reshaped/cast) `input_name`."""
    from onnx import numpy_helper
    inits = {i.name: i for i in model.graph.initializer}
    consts = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant" and n.output}
    frontier, seen = [input_name], set()
    while frontier:
        t = frontier.pop()
        if t in seen:
            continue
        seen.add(t)
        for n in model.graph.node:
            if t not in n.input:
                continue
            if n.op_type == "Gather" and len(n.input) == 2 and n.input[1] == t:
                if n.input[0] in inits and inits[n.input[0]].dims:
                    return int(inits[n.input[0]].dims[0])
                if n.input[0] in consts:
                    from onnx import helper
                    constant = consts[n.input[0]]
                    if not constant.attribute:
                        raise ModelError(f"Constant node '{constant.name}' has no value")
                    table = numpy_helper.to_array(helper.get_attribute_value(
                        constant.attribute[0]))
                    if table.ndim == 0:
                        raise ModelError(f"Gather node '{n.name}' indexes a scalar")
                    return int(table.shape[0])
            elif n.op_type in ("Cast", "Reshape", "Squeeze", "Unsqueeze", "Transpose",
                               "Identity", "Flatten"):
                frontier.extend(o for o in n.output if o)
    return None


def _is_int(dtype) -> bool:
    return np.issubdtype(dtype, np.integer)


def analyze(enc_model, dec_model, links: dict, zeros: set, base: dict, vocabs: dict):
    from .graph import input_infos, run_all

    rng = np.random.default_rng(1234)
    enc_inputs = input_infos(enc_model)
    dec_inputs = input_infos(dec_model)
    enc_outputs = [o.name for o in enc_model.graph.output]
    # encoder inputs: the source ids (rank 2) or one-hot vectors (float, rank 3) and
    # optional lengths (rank 1)
    src = [i for i in enc_inputs if (_is_int(i[1]) and len(i[2]) == 2) or
           (is_float(i[1]) and len(i[2]) == 3)]
    lengths = [i for i in enc_inputs if _is_int(i[1]) and len(i[2]) == 1]
    other = [i for i in enc_inputs if i not in src and i not in lengths]
    if len(src) != 1 or other:
        raise ModelError("encoder graph: expected one input of source ids (integer [batch, "
                         "length]) or one-hot vectors (float [batch, length, vocabulary]), and "
                         "optionally integer lengths [batch]; its inputs are "
                         + ", ".join(f"{n} {d} {s}" for n, d, s in enc_inputs))
    src_name, src_dtype, src_dims = src[0]
    one_hot = {"source": is_float(src_dtype), "target": False}
    if one_hot["source"]:
        src_width = one_hot_width(src_name, src_dims, "encoder")
        src_dims = src_dims[:2]
    # decoder inputs: the token, encoder-provided inputs, states, masks
    token = [i for i in dec_inputs if _is_int(i[1]) and len(i[2]) <= 2
             and _embedding_rows(dec_model, i[0]) is not None]
    if not token:   # the previous token as a one-hot vector [batch, V] or [batch, 1, V]
        token = [i for i in dec_inputs if is_float(i[1]) and len(i[2]) in (2, 3)
                 and i[2][-1] == len(vocabs["target"]) and i[0] not in links
                 and i[0] not in enc_outputs and i[0] not in zeros]
        one_hot["target"] = len(token) == 1
    if len(token) != 1:
        raise ModelError("decoder graph: expected one integer input of previous target tokens "
                         "that indexes the target embedding (or one float input of one-hot "
                         f"vectors [batch, {len(vocabs['target'])}], the target vocabulary's "
                         "size); found "
                         f"{[t[0] for t in token] or 'none'}")
    token_name, token_dtype, token_dims = token[0]
    if one_hot["target"]:
        token_width, token_dims = token_dims[-1], token_dims[:-1]
    for dec, enc in links.items():
        if dec not in {i[0] for i in dec_inputs}:
            raise ModelError(f"--link {dec}={enc}: the decoder has no input '{dec}' (inputs: "
                             f"{[i[0] for i in dec_inputs]})")
        if enc not in enc_outputs:
            raise ModelError(f"--link {dec}={enc}: the encoder has no output '{enc}' (outputs: "
                             f"{enc_outputs})")
    for z in zeros:
        if z not in {i[0] for i in dec_inputs}:
            raise ModelError(f"--zero-state {z}: the decoder has no input '{z}'")
    for name, _, _ in dec_inputs:
        if name not in links and name in enc_outputs and name not in zeros:
            links[name] = name

    V_s = src_width if one_hot["source"] else \
        _embedding_rows(enc_model, src_name) or len(vocabs["source"])
    V_t = token_width if one_hot["target"] else \
        _embedding_rows(dec_model, token_name) or len(vocabs["target"])
    specials = base["special_tokens"]
    taken = _all_dims([enc_model, dec_model])
    static_b = [d for d in (token_dims[:1]) if isinstance(d, int)]
    B = static_b[0] if static_b else _pick((3, 5, 7, 9, 15, 21, 27), taken)
    S_choice = _pick((11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67),
                     taken | {B})
    avoid = {vocabs["source"].index(specials[k]) for k in specials
             if specials[k] in vocabs["source"]}
    for side, rows in (("source", V_s), ("target", V_t)):
        if not 0 < rows <= MAX_VOCAB:
            raise ModelError(f"the {side} embedding has {rows} rows; expected 1 to {MAX_VOCAB}")
    ids_pool = np.setdiff1d(np.arange(V_s), np.array(sorted(avoid), dtype=np.int64))
    if ids_pool.size == 0:
        ids_pool = np.arange(V_s)

    def encoder_feeds(batch_axis):
        dims = list(src_dims)
        s_axis = 1 - batch_axis
        if not isinstance(dims[batch_axis], int):
            dims[batch_axis] = B
        if not isinstance(dims[s_axis], int):
            dims[s_axis] = S_choice
        ids = rng.choice(ids_pool, size=tuple(dims))
        feeds = {src_name: one_hot_values(ids, V_s, src_dtype) if one_hot["source"]
                 else ids.astype(src_dtype)}
        for name, dtype, _ in lengths:
            feeds[name] = np.full((dims[batch_axis],), dims[s_axis], dtype=dtype)
        return feeds, dims[batch_axis], dims[s_axis]

    enc_values = None
    for batch_axis in (0, 1):
        feeds, b, s = encoder_feeds(batch_axis)
        values = run_all(enc_model, feeds, "encoder")
        seq = _rnn_sequence_length(enc_model, values)
        if seq is None or seq == s:
            enc_values, B, S = values, b, s
            break
    if enc_values is None:
        raise ModelError("encoder graph: cannot tell which source axis is the batch")
    src_ids = enc_values[src_name] if not one_hot["source"] else \
        token_ids(enc_values[src_name])
    src_ids = src_ids if batch_axis == 0 else src_ids.T

    from .graph import Graph, Probe
    probe = Probe(B, S)
    shapes = {o: np.asarray(enc_values[o]).shape for o in enc_outputs}
    static_links, state_links, masks, step = {}, {}, [], []
    for name, dtype, dims in dec_inputs:
        if name == token_name:
            continue
        if name in links:
            enc_out = links[name]
            if S in shapes[enc_out] and S > 1:
                static_links[name] = enc_out
            else:
                state_links[name] = enc_out
                step.append((name, dtype, dims))
            continue
        dynamic = [d for d in dims if not isinstance(d, int)]
        if np.issubdtype(dtype, np.floating) and name not in zeros:
            # the memory by shape: same rank, same static sizes as exactly one encoder output
            # that has a source axis
            cands = [o for o in enc_outputs if S in shapes[o] and len(shapes[o]) == len(dims)
                     and all(not isinstance(d, int) or d == shapes[o][i]
                             for i, d in enumerate(dims))]
            if len(dynamic) >= 2 and len(cands) == 1:
                static_links[name] = cands[0]
                continue
            if len(dynamic) >= 2:
                raise ModelError(f"decoder input '{name}' {dims} looks like it takes the memory, "
                                 f"but no single encoder output fits; pass --link {name}=OUTPUT "
                                 f"(encoder outputs: {enc_outputs})")
            step.append((name, dtype, dims))
        elif np.issubdtype(dtype, np.floating):
            step.append((name, dtype, dims))
        else:
            masks.append((name, dtype, dims))

    def decoder_feeds(fill):
        feeds = {}
        tdims = [B if not isinstance(d, int) else d for d in token_dims]
        ids = rng.integers(0, V_t, size=tuple(tdims))
        feeds[token_name] = one_hot_values(ids, V_t, token_dtype) if one_hot["target"] \
            else ids.astype(token_dtype)
        for name, enc_out in static_links.items():
            feeds[name] = enc_values[enc_out].astype(dict((n, d) for n, d, _ in dec_inputs)[name])
        for name, dtype, dims in step:
            shape = tuple(B if not isinstance(d, int) else d for d in dims)
            feeds[name] = (rng.standard_normal(shape) * 0.5).astype(dtype)
        for name, dtype, dims in masks:
            if len(dims) == 1:   # lengths
                feeds[name] = np.full((B,), S, dtype=dtype)
                continue
            shape = tuple(B if i == 0 and not isinstance(d, int) else
                          S if not isinstance(d, int) else d for i, d in enumerate(dims))
            feeds[name] = np.full(shape, fill, dtype=dtype)
        return feeds

    fills = (1, 0) if masks else (1,)
    last_error = None
    for fill in fills:
        dec_values = run_all(dec_model, decoder_feeds(fill), "decoder")
        g = Graph(probe)
        g.add_graph(enc_model, "encoder", enc_values)
        g.add_graph(dec_model, "decoder", dec_values,
                    links={d: "encoder/" + e for d, e in static_links.items()})
        try:
            config, tensors = _build(g, links, zeros, base, vocabs, src_name, token_name,
                                     [n for n, _, _ in step], src_ids, state_links, one_hot)
            return config, tensors
        except _MaskProbe as e:
            last_error = e
    raise ModelError(f"decoder graph: the source mask input(s) {[m[0] for m in masks]} could not"
                     f" be set to 'all positions valid' ({last_error})")


class _MaskProbe(ModelError):
    pass


def _rnn_sequence_length(model, values) -> int | None:
    for n in model.graph.node:
        if n.op_type in ("LSTM", "GRU", "RNN"):
            layout = next((a.i for a in n.attribute if a.name == "layout"), 0)
            x = values[n.input[0]]
            return int(x.shape[1] if layout else x.shape[0])
    return None


def _build(g, links, zeros, base, vocabs, src_name, token_name, step_names, src_ids,
           state_links, one_hot):
    from .affine import AffineWalker
    from .bridge import analyze_bridge
    from .decoder import analyze_decoder
    from .encoder import analyze_encoder
    from .graph import Registry
    from ...model_spec import FORMAT_NAME, FORMAT_VERSION

    for side, tag, name in (("source", "encoder", src_name), ("target", "decoder", token_name)):
        if one_hot[side]:
            check_multiplied(g, f"{tag}/{name}", tag)
    walker = AffineWalker(g)
    reg = Registry(g)
    enc = analyze_encoder(g, walker, reg, "encoder/" + src_name, one_hot["source"])
    dec = analyze_decoder(g, walker, reg, enc, "decoder/" + token_name,
                          ["decoder/" + n for n in step_names], one_hot["target"])
    for node in dec.masks:
        passed = [i for i in node.inputs[1:] if not g.is_const(i)] if node.op == "Where" \
            else [node.inputs[0]]
        if not any(np.array_equal(g.value(node.outputs[0]), g.value(p)) for p in passed):
            raise _MaskProbe(f"{node.describe()} changed the scores")
    bridge, bridge_tensors = analyze_bridge(g, walker, reg, enc, dec, dict(links), set(zeros))

    top = enc.top
    H = top.hidden
    config = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **base}
    config["encoder"] = {"embedding_size": int(enc.embedding.shape[1]), "cell": top.cell,
                         "hidden_size": H, "num_layers": len(enc.layers),
                         "bidirectional": top.directions == 2, "merge": enc.merge or "concat",
                         "gru_reset_after": bool(top.reset_after) if top.cell == "gru" else True}
    config["bridge"] = bridge
    config["attention"] = dec.attention
    config["decoder"] = dec.config
    tensors = {"encoder.embedding.weight": enc.embedding}
    names = ("forward", "backward")
    for layer, op in enumerate(enc.layers):
        for d in range(op.directions):
            p = f"encoder.layers.{layer}.{names[d]}"
            w_ih = enc.w_ih[layer][d]
            if layer > 0 and enc.merge == "sum" and op.directions == 2:
                if not np.allclose(w_ih[:, :H], w_ih[:, H:]):
                    raise ModelError(f"{enc.layers[layer].node.describe()}: reads the two "
                                     "directions of the layer below separately, but the memory "
                                     "sums them")
                w_ih = w_ih[:, :H]
            tensors[f"{p}.weight_ih"] = w_ih
            tensors[f"{p}.weight_hh"] = op.w_hh[d]
            tensors[f"{p}.bias_ih"] = enc.b_ih[layer][d]
            tensors[f"{p}.bias_hh"] = op.b_hh[d]
    tensors.update(bridge_tensors)
    tensors.update(dec.tensors)
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
    written, tokens = dict(tensors), dict(vocabs)
    if one_hot["source"] or one_hot["target"]:
        written, tokens = _one_hot_model(config, written, vocabs, one_hot, enc.embedding)
    check_vocabularies(config, tokens["source"], tokens["target"],
                       written["encoder.embedding.weight"].shape[0],
                       written["decoder.embedding.weight"].shape[0],
                       written["decoder.output.weight"].shape[0])
    from .check import verify
    verify(g, config, tensors, enc, dec, src_ids, links, zeros)   # the graphs' own sizes
    vocabs.update(tokens)
    return config, written


def _one_hot_model(config, tensors, vocabs, one_hot, source_embedding):
    """source.kind one_hot, and the unknown token as the all-zero vector (common/one_hot.py)
    on the one-hot sides that lack one; the special pad token is that entry too when the
    source has no token of its name. Returns the tensors and vocabularies to write."""
    specials = dict(config["special_tokens"])
    source, target = list(vocabs["source"]), list(vocabs["target"])
    if one_hot["source"]:
        config["source"] = {**config.get("source", {}), "kind": "one_hot",
                            "feature_size": int(source_embedding.shape[1])}
        if specials["pad"] not in source:
            specials["pad"] = specials["unk"]
    elif specials["unk"] not in source:
        raise ModelError(f"the source vocabulary lacks the UNK token {specials['unk']!r}")
    suppress = add_unknown_entry(tensors, source if one_hot["source"] else None, target,
                                 specials["unk"])
    given = config.get("target", {}).get("suppress_tokens") or []
    config["target"] = {**config.get("target", {}), "suppress_tokens": given + suppress}
    config["special_tokens"] = specials
    return tensors, {"source": source, "target": target}
