"""Reading Keras files without Keras: the model's functional graph and its weights.

Three inputs are understood, all read with h5py and the standard library only:
  * a Keras 3 `.keras` archive (a zip holding config.json and model.weights.h5),
  * a legacy HDF5 model file (`model.save("x.h5")` in Keras 2 or 3: the `model_config`
    attribute plus the `model_weights` group),
  * a Keras 3 weights file (`model.save_weights("x.weights.h5")`) together with the
    architecture as JSON (`model.to_json()`, or the config.json of a `.keras` archive).

The graph is the training model's functional config: layers, and for each call of a layer
(a "node") the tensors it read. Keras 3 and Keras 2 write nodes differently; both are
turned into `Call` objects here.
"""
from __future__ import annotations

import io
import json
import os
import re
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ...errors import ModelError


@dataclass(frozen=True)
class Ref:
    """Output `index` of call `node` of layer `layer` (Keras' keras_history)."""
    layer: str
    node: int
    index: int

    def __str__(self) -> str:
        return f"{self.layer}[{self.node}][{self.index}]"


@dataclass
class Call:
    inputs: list[Ref]                  # tensors passed positionally, flattened, in order
    kwargs: dict                       # keyword arguments; tensors in them become Ref
    kwarg_refs: dict = field(default_factory=dict)   # name -> list[Ref] (e.g. initial_state)


@dataclass
class Layer:
    name: str
    class_name: str
    config: dict
    calls: list[Call]


@dataclass
class KerasModel:
    path: str
    class_name: str
    layers: dict[str, Layer]           # in file order
    inputs: list[Ref]
    outputs: list[Ref]
    weights: dict[str, list[np.ndarray]]   # layer name -> variables in layer.weights order
    weight_groups: dict[str, list[str]]    # layer name -> per variable: "", "forward", "backward"
    keras_version: str = ""


def _mk_err(path: str, message: str) -> ModelError:
    return ModelError(f"{path}: {message}")


# ---------------------------------------------------------------- loading files

def load_keras(path: str, config_path: str | None = None) -> KerasModel:
    """Read a .keras archive, a legacy .h5 model, or a .weights.h5 file plus config JSON."""
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelError("reading Keras files needs h5py: pip install 'rnnsearch[keras]'") from e
    if not os.path.exists(path):
        raise ModelError(f"Keras model file not found: {path}")
    version = ""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names or "model.weights.h5" not in names:
                raise _mk_err(path, "not a Keras 3 .keras archive (config.json and "
                                    "model.weights.h5 expected); sharded or npz weights are "
                                    "not supported")
            top = json.loads(archive.read("config.json"))
            if config_path:
                top = _read_json(config_path)
            if "metadata.json" in names:
                version = json.loads(archive.read("metadata.json")).get("keras_version", "")
            data = io.BytesIO(archive.read("model.weights.h5"))
        with h5py.File(data, "r") as f:
            graph = _parse_model_config(top, path)
            weights, groups = _read_keras3_weights(f, graph, path)
    else:
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            raise _mk_err(path, f"neither a .keras archive nor an HDF5 file ({e})") from e
        with f:
            if "model_config" in f.attrs and not config_path:
                top = json.loads(_text(f.attrs["model_config"]))
                version = _text(f.attrs.get("keras_version", ""))
                graph = _parse_model_config(top, path)
                weights, groups = _read_legacy_weights(f["model_weights"], graph, path)
            else:
                if not config_path:
                    raise _mk_err(path, "this HDF5 file holds weights only; pass the "
                                        "architecture with --keras-config (the JSON of "
                                        "model.to_json())")
                graph = _parse_model_config(_read_json(config_path), path)
                if "layers" in f:
                    weights, groups = _read_keras3_weights(f, graph, path)
                else:
                    weights, groups = _read_legacy_weights(
                        f["model_weights"] if "model_weights" in f else f, graph, path)
    graph.weights, graph.weight_groups, graph.keras_version = weights, groups, version
    return graph


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"cannot read Keras config {path}: {e}") from e


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


# ---------------------------------------------------------------- the graph

def _parse_model_config(top: dict, path: str) -> KerasModel:
    if isinstance(top, str):
        top = json.loads(top)
    class_name = top.get("class_name", "")
    if class_name == "Sequential":
        raise _mk_err(path, "a Sequential model cannot be an encoder-decoder; save the "
                            "functional training model (two inputs: source and target)")
    if class_name not in ("Functional", "Model") or "layers" not in top.get("config", {}):
        raise _mk_err(path, f"expected a functional Keras model, found {class_name or 'no'} "
                            "model config (subclassed models keep their graph in Python code "
                            "and cannot be read; rebuild them with the functional API)")
    config = top["config"]
    layers: dict[str, Layer] = {}
    for entry in config["layers"]:
        name = entry.get("name") or entry["config"]["name"]
        calls = [_parse_node(node, path, name) for node in entry.get("inbound_nodes", [])]
        layers[name] = Layer(name, entry["class_name"], entry.get("config", {}), calls)
    return KerasModel(path, class_name, layers, _refs(config["input_layers"]),
                      _refs(config["output_layers"]), {}, {})


def _refs(items) -> list[Ref]:
    # [name, node, index] or a list of those (or, for a single tensor, just one)
    if items and isinstance(items[0], str):
        items = [items]
    return [Ref(i[0], int(i[1]), int(i[2])) for i in items]


def _is_keras3_tensor(obj) -> bool:
    return isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"


def _collect_keras3(obj, out: list) -> None:
    if _is_keras3_tensor(obj):
        history = obj["config"]["keras_history"]
        out.append(Ref(history[0], int(history[1]), int(history[2])))
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _collect_keras3(item, out)
    elif isinstance(obj, dict) and obj.get("class_name") is None:
        for item in obj.values():
            _collect_keras3(item, out)


def _is_keras2_ref(obj) -> bool:
    return (isinstance(obj, list) and len(obj) in (3, 4) and isinstance(obj[0], str)
            and isinstance(obj[1], int) and isinstance(obj[2], int))


def _collect_keras2(obj, out: list) -> None:
    if _is_keras2_ref(obj):
        out.append(Ref(obj[0], obj[1], obj[2]))
    elif isinstance(obj, list):
        for item in obj:
            _collect_keras2(item, out)
    elif isinstance(obj, dict):
        for item in obj.values():
            _collect_keras2(item, out)


def _keras2_entries(obj, out: list) -> None:
    if isinstance(obj, list) and obj and obj[0] == "_CONSTANT_VALUE":
        return
    if _is_keras2_ref(obj):
        out.append(obj)
    elif isinstance(obj, list):
        for item in obj:
            _keras2_entries(item, out)


def _parse_node(node, path: str, layer: str) -> Call:
    if isinstance(node, dict) and "args" in node:      # Keras 3
        inputs: list[Ref] = []
        _collect_keras3(node["args"], inputs)
        kwargs = node.get("kwargs", {}) or {}
        kwarg_refs = {}
        for key, value in kwargs.items():
            refs: list[Ref] = []
            _collect_keras3(value, refs)
            if refs:
                kwarg_refs[key] = refs
        return Call(inputs, kwargs, kwarg_refs)
    if isinstance(node, list):                          # Keras 2: [[name, node, index, kwargs]...]
        # Keras 2 writes every tensor of the call's first argument as [layer, node, index,
        # kwargs] (an RNN's initial states are part of that argument, after the sequence);
        # constants appear as ["_CONSTANT_VALUE", -1, value, kwargs].
        entries: list = []
        _keras2_entries(node, entries)
        if not entries:
            raise _mk_err(path, f"layer '{layer}': cannot read inbound node {node!r}")
        inputs = [Ref(e[0], e[1], e[2]) for e in entries]
        kwargs = next((e[3] for e in entries if len(e) == 4 and isinstance(e[3], dict)), {})
        kwarg_refs = {}
        for key, value in kwargs.items():
            refs = []
            _collect_keras2(value, refs)
            if refs:
                kwarg_refs[key] = refs
        return Call(inputs, kwargs, kwarg_refs)
    raise _mk_err(path, f"layer '{layer}': cannot read inbound node {node!r}")


# ---------------------------------------------------------------- weights

def _to_snake_case(name: str) -> str:
    # keras.src.utils.naming.to_snake_case, used for the paths inside model.weights.h5
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _vars_in(group, prefix: str = ""):
    """(relative path of a `vars` group, [arrays in index order]) under `group`, depth
    first with children in the order Keras writes them (sorted by name)."""
    import h5py
    found = []
    if "vars" in group and isinstance(group["vars"], h5py.Group):
        arrays = group["vars"]
        keys = sorted((k for k in arrays.keys()), key=lambda k: int(k) if k.isdigit() else k)
        if keys:
            found.append((prefix, [np.array(arrays[k]) for k in keys]))
    for key in sorted(group.keys()):
        if key == "vars" or not isinstance(group[key], h5py.Group):
            continue
        found.extend(_vars_in(group[key], f"{prefix}/{key}" if prefix else key))
    return found


def _group_of(path: str) -> str:
    parts = path.split("/")
    if parts and parts[0] in ("forward_layer", "backward_layer"):
        return parts[0].split("_")[0]
    return ""


def _read_keras3_weights(f, graph: KerasModel, path: str):
    """model.weights.h5: layers/<snake_case(class)[_n]>/[child/...]vars/<i>."""
    if "layers" not in f:
        raise _mk_err(path, "no 'layers' group in the weights file")
    root = f["layers"]
    by_name: dict[str, str] = {}
    for key in root.keys():
        vars_group = root[key].get("vars")
        name = vars_group.attrs.get("name") if vars_group is not None else None
        if name is not None:
            by_name[_text(name)] = key
    used: dict[str, int] = {}
    weights, groups = {}, {}
    for layer in graph.layers.values():
        base = _to_snake_case(layer.class_name)
        if base in used:
            used[base] += 1
            key = f"{base}_{used[base]}"
        else:
            used[base] = 0
            key = base
        # the layer-name attribute (Keras >= 3.x writes it) wins; else Keras' own path
        # naming (snake_case class name, numbered in layer order)
        if layer.name in by_name:
            key = by_name[layer.name]
        elif key in by_name.values():
            key = None
        if key is None or key not in root:
            weights[layer.name], groups[layer.name] = [], []
            continue
        arrays, where = [], []
        for sub, values in _vars_in(root[key]):
            arrays.extend(values)
            where.extend([_group_of(sub)] * len(values))
        weights[layer.name], groups[layer.name] = arrays, where
    return weights, groups


def _read_legacy_weights(g, graph: KerasModel, path: str):
    """Legacy HDF5: model_weights/<layer name> with attribute weight_names (in
    layer.weights order), each naming a dataset inside that group."""
    weights, groups = {}, {}
    for layer in graph.layers.values():
        if layer.name not in g:
            weights[layer.name], groups[layer.name] = [], []
            continue
        group = g[layer.name]
        names = [_text(n) for n in group.attrs.get("weight_names", [])]
        arrays, where = [], []
        for name in names:
            arrays.append(np.array(group[name]))
            parts = name.split("/")
            tag = ""
            for part in parts[1:-1]:
                if part.startswith("forward_"):
                    tag = "forward"
                elif part.startswith("backward_"):
                    tag = "backward"
            where.append(tag)
        weights[layer.name], groups[layer.name] = arrays, where
    return weights, groups
