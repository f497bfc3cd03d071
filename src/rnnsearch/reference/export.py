"""Between reference modules and model directories: the parameter -> tensor name map,
export, loading, and random models for tests."""
from __future__ import annotations

import numpy as np
import torch

from .. import source_options
from ..model_dir import load_model_dir as load_files
from ..model_dir import write_model_dir
from .attention import Attention
from .modules import Seq2Seq, full_config
from .stateful_attention import stateful_parameters

ARCHITECTURE = ("encoder", "bridge", "attention", "decoder")
# reference.attention.Attention's layers and vectors -> their names after "attention."
LINEARS = {"key": "key", "query": "query", "gate": "gate", "value": "value",
           "position": "position", "chunk_query": "chunk.query", "chunk_key": "chunk.key"}
VECTORS = {"v": "v", "scale": "scale", "position_v": "position.v",
           "position_v_bias": "position.v_bias",
           "energy_bias": "energy_bias", "energy_gain": "energy_gain", "chunk_v": "chunk.v"}


def spec_parameters(model: Seq2Seq) -> dict[str, torch.nn.Parameter]:
    """Every parameter of the model under its docs/model-format.md tensor name."""
    encoder = model.encoder
    names = {"decoder.embedding.weight": model.decoder.embedding.weight}
    if encoder.embedding is not None:
        names["encoder.embedding.weight"] = encoder.embedding.weight
    linears = {"encoder.input_projection": encoder.input_projection}
    for l, linear in enumerate(encoder.projections or []):
        linears[f"encoder.layers.{l}.projection"] = linear
    for prefix, linear in linears.items():
        if linear is not None:
            names[f"{prefix}.weight"] = linear.weight
            names[f"{prefix}.bias"] = linear.bias
    for l, layer in enumerate(model.encoder.layers):
        for direction, rnn in zip(("forward", "backward"), layer):
            for suffix, param in rnn.cell_parameters().items():
                names[f"encoder.layers.{l}.{direction}.{suffix}"] = param
    for l, linears in enumerate(model.bridge.layers):
        for state, linear in linears.items():  # hidden, cell
            names[f"bridge.layers.{l}.{state}.weight"] = linear.weight
            names[f"bridge.layers.{l}.{state}.bias"] = linear.bias
    if model.pooling is not None:
        names["encoder.pooling.projection.weight"] = model.pooling.projection.weight
        names["encoder.pooling.projection.bias"] = model.pooling.projection.bias
        names["encoder.pooling.query.weight"] = model.pooling.query.weight
    attention = model.attention
    if attention is not None and not isinstance(attention, Attention):
        names.update(stateful_parameters(attention))
    elif attention is not None:
        for part, name in LINEARS.items():
            linear = getattr(attention, part)
            if linear is not None:
                names[f"attention.{name}.weight"] = linear.weight
                names[f"attention.{name}.bias"] = linear.bias
        for part, name in VECTORS.items():
            if getattr(attention, part) is not None:
                names[f"attention.{name}"] = getattr(attention, part)
        for part in ("key_norm", "query_norm"):
            if getattr(attention, part) is not None:
                for suffix, param in getattr(attention, part).named_parameters():
                    names[f"attention.{part}.{suffix}"] = param
    if getattr(model, "context_projection", None) is not None:
        names["attention.context.weight"] = model.context_projection.weight
        names["attention.context.bias"] = model.context_projection.bias
    for l, cell in enumerate(model.decoder.layers):
        for suffix, param in cell.named_parameters():  # weight_ih, weight_hh, bias_ih, bias_hh
            names[f"decoder.layers.{l}.{suffix}"] = param
    for part in ("attentional", "readout", "output"):
        linear = getattr(model.decoder, part)
        if linear is not None:
            names[f"decoder.{part}.weight"] = linear.weight
            names[f"decoder.{part}.bias"] = linear.bias
    if model.decoder.readout_norm is not None:
        for suffix, param in model.decoder.readout_norm.named_parameters():
            names[f"decoder.readout_norm.{suffix}"] = param
    return names


def model_tensors(model: Seq2Seq) -> dict[str, np.ndarray]:
    """All weights (every optional bias, v and scale included) as float32 arrays."""
    return {name: param.detach().cpu().numpy().astype(np.float32, copy=True)
            for name, param in spec_parameters(model).items()}


def _architecture(config: dict) -> dict:
    normalized = full_config(config)
    return {key: normalized[key] for key in ARCHITECTURE}


def export_model_dir(model: Seq2Seq, path: str, source_vocab: list[str],
                     target_vocab: list[str], config: dict | None = None) -> None:
    """Write a model directory. `config` supplies the non-architecture sections (special
    tokens, source/target options); its architecture must be the model's own."""
    config = dict(model.config if config is None else config)
    if _architecture(config) != _architecture(model.config):
        raise ValueError("config describes another architecture than the model's")
    write_model_dir(path, config, model_tensors(model), source_vocab, target_vocab)


@torch.no_grad()
def load_tensors(model: Seq2Seq, tensors: dict[str, np.ndarray]) -> Seq2Seq:
    """Copy weights in by tensor name; absent optional ones take the spec's defaults
    (biases 0, attention.v 1, attention.scale 1)."""
    params = spec_parameters(model)
    extra = sorted(set(tensors) - set(params))
    if extra:
        raise ValueError(f"tensors not in this architecture: {extra}")
    # an absent energy gain means v as it is: g = |v| (set once v is in)
    names = sorted(params, key=lambda name: name == "attention.energy_gain")
    for name in names:
        param = params[name]
        if name in tensors:
            value = torch.from_numpy(np.array(tensors[name], dtype=np.float32))
            if value.shape != param.shape:
                raise ValueError(f"{name}: shape {list(value.shape)}, expected "
                                 f"{list(param.shape)}")
            param.copy_(value)
        elif name.endswith("bias") or name.endswith("bias_ih") or name.endswith("bias_hh"):
            param.zero_()
        elif name in ("attention.v", "attention.scale"):
            param.fill_(1.0)
        elif name == "attention.energy_gain":
            param.fill_(float(params["attention.v"].norm()))
        else:
            raise ValueError(f"missing tensor {name}")
    return model


def model_from_tensors(config: dict, tensors: dict[str, np.ndarray],
                       source_vocab_size: int, target_vocab_size: int) -> Seq2Seq:
    model = Seq2Seq(config, source_vocab_size, target_vocab_size)
    return load_tensors(model, tensors).eval()


def load_model_dir(path: str) -> tuple[Seq2Seq, int, int]:
    """A model directory as (Seq2Seq in eval mode, target BOS id, target EOS id)."""
    from ..quantize import dequantize_tensors
    files = load_files(path)
    model = model_from_tensors(files.config, dequantize_tensors(files.tensors),
                               len(files.source_vocab), len(files.target_vocab))
    specials = files.config["special_tokens"]
    ids = files.target_vocab.ids
    return model, ids[specials["bos"]], ids[specials["eos"]]


@torch.no_grad()
def random_model(config: dict, source_vocab_size: int, target_vocab_size: int,
                 seed: int = 0, peak: float = 0.7) -> Seq2Seq:
    """A Seq2Seq with PyTorch's default random initialisation (biases included, so they
    are exercised), random attention v / scale, and the output layer scaled so that the
    median probability of the top token, over random sources and target prefixes, is
    about `peak`: peaked like a trained model's, yet with real competition in the beam."""
    torch.manual_seed(seed)
    model = Seq2Seq(config, source_vocab_size, target_vocab_size).eval()
    attention = model.attention
    scorer = getattr(attention, "score", None)  # a stateful type's additive score module
    v = getattr(scorer if isinstance(scorer, torch.nn.Module) else attention, "v", None)
    if isinstance(v, torch.nn.Parameter):
        v.uniform_(-1.0, 1.0)
    if attention is not None and getattr(attention, "scale", None) is not None:
        attention.scale.uniform_(0.5, 1.5)
    for name, low, high in (("energy_gain", 1.0, 3.0), ("energy_bias", -0.5, 0.5),
                            ("position_v_bias", -0.5, 0.5)):  # reference.attention.Attention's
        if getattr(attention, name, None) is not None:
            getattr(attention, name).uniform_(low, high)

    generator = torch.Generator().manual_seed(seed + 1)
    enc = model.config["encoder"]
    shortest = source_options.shortest_source(enc)
    B, S, T = 16, 6 + shortest, 6
    lengths = torch.randint(shortest, S + 1, (B,), generator=generator)
    lengths[0] = S
    if model.config["source"]["kind"] == "features":
        src = torch.randn((B, S, model.config["source"]["feature_size"]), generator=generator)
    else:
        src = torch.randint(0, source_vocab_size, (B, S), generator=generator)
    tgt = torch.randint(0, target_vocab_size, (B, T), generator=generator)
    output = model.decoder.output
    weight, bias = output.weight.clone(), output.bias.clone()

    def median_top(scale: float) -> float:
        output.weight.copy_(weight * scale)
        output.bias.copy_(bias * scale)
        return float(model(src, lengths, tgt).exp().amax(dim=-1).median())

    # the top probability grows with the scale: bisect on a log scale
    low, high = 1e-2, 1e3
    for _ in range(16):
        middle = (low * high) ** 0.5
        low, high = (middle, high) if median_top(middle) < peak else (low, middle)
    median_top((low * high) ** 0.5)
    return model
