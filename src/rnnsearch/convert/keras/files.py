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
import re
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ...errors import ModelError
from ...limits import MAX_CONFIG_BYTES, MAX_TENSOR_ELEMENTS, physical_memory
from ...safe_files import ZIP_ERRORS, load_json, parse_json, require_regular_file
from ..common.read_check import checked_in_child

_MAX_HDF5_DEPTH = 32          # group nesting (Keras writes about 6)
_MAX_HDF5_OBJECTS = 1_000_000
_MAX_HDF5_RATIO = 64          # unpacked / stored bytes of a dataset (Keras stores them raw)


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

@checked_in_child("Keras model file")
def load_keras(path: str, config_path: str | None = None) -> KerasModel:
    """Read a .keras archive, a legacy .h5 model, or a .weights.h5 file plus config JSON."""
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelError("reading Keras files needs h5py: pip install 'rnnsearch[keras]'") from e
    require_regular_file(path, "Keras model file")
    try:
        return _load(h5py, path, config_path)
    except ModelError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, zipfile.BadZipFile,
            EOFError) as e:   # what h5py and zipfile raise on corrupt files
        raise _mk_err(path, f"cannot read the file ({type(e).__name__}: {e})") from e


def _load(h5py, path: str, config_path: str | None) -> KerasModel:
    version = ""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names or "model.weights.h5" not in names:
                raise _mk_err(path, "not a Keras 3 .keras archive (config.json and "
                                    "model.weights.h5 expected); sharded or npz weights are "
                                    "not supported")
            top = parse_json(_member(archive, "config.json", MAX_CONFIG_BYTES, path),
                             f"{path}: config.json")
            if config_path:
                top = _read_json(config_path)
            if "metadata.json" in names:
                metadata = parse_json(_member(archive, "metadata.json", MAX_CONFIG_BYTES, path),
                                      f"{path}: metadata.json")
                version = metadata.get("keras_version", "") if isinstance(metadata, dict) \
                    else ""
            data = io.BytesIO(_member(archive, "model.weights.h5", max_archive_member(), path))
        with h5py.File(data, "r") as f:
            _no_external_files(f, path)
            graph = _parse_model_config(top, path)
            weights, groups = _read_keras3_weights(f, graph, path)
    else:
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            raise _mk_err(path, f"neither a .keras archive nor an HDF5 file ({e})") from e
        with f:
            _no_external_files(f, path)
            if "model_config" in f.attrs and not config_path:
                top = parse_json(_text(f.attrs["model_config"]), f"{path}: model_config")
                version = _text(f.attrs.get("keras_version", ""))
                graph = _parse_model_config(top, path)
                weights, groups = _read_legacy_weights(_child(f, "model_weights", path),
                                                       graph, path)
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
                        _child(f, "model_weights", path) if "model_weights" in f else f,
                        graph, path)
    graph.weights, graph.weight_groups, graph.keras_version = weights, groups, version
    return graph


def max_archive_member() -> int:
    """The most a .keras archive's weights may unpack to: half the machine's memory."""
    return physical_memory() // 2


def _member(archive: zipfile.ZipFile, name: str, limit: int, path: str) -> bytes:
    """An archive member, refused if it unpacks to more than `limit` bytes (a zip bomb):
    the declared size is checked first, and reading stops past it whatever it says."""
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise _mk_err(path, f"{name} unpacks to {info.file_size} bytes; at most {limit} are "
                            "read")
    try:
        with archive.open(info) as member:
            data = member.read(limit + 1)
    except ZIP_ERRORS as e:
        raise _mk_err(path, f"{name} cannot be unpacked ({type(e).__name__}: {e})") from e
    if len(data) > limit:
        raise _mk_err(path, f"{name} unpacks to more than {limit} bytes")
    return data


def _read_json(path: str) -> dict:
    return load_json(path, "Keras config")


# ---------------------------------------------------------------- HDF5, read defensively

def _no_external_files(f, path: str) -> None:
    """Refuse an HDF5 file that would make h5py read other files: external links, datasets
    with external storage, virtual datasets. Walks every group once (bounded)."""
    import h5py
    stack, seen = [(f, 0)], 0
    while stack:
        group, depth = stack.pop()
        if depth > _MAX_HDF5_DEPTH:
            raise _mk_err(path, f"HDF5 groups nested more than {_MAX_HDF5_DEPTH} deep "
                                "(or in a cycle)")
        for key in group.keys():
            seen += 1
            if seen > _MAX_HDF5_OBJECTS:
                raise _mk_err(path, f"more than {_MAX_HDF5_OBJECTS} HDF5 objects")
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise _mk_err(path, f"HDF5 object '{group.name}/{key}' is a link to another "
                                    f"file ({link.filename}); only self-contained files are "
                                    "read")
            item = group.get(key)
            if isinstance(item, h5py.Dataset):
                _check_dataset(item, path)
            elif isinstance(item, h5py.Group) and not isinstance(link, h5py.SoftLink):
                stack.append((item, depth + 1))


def _check_dataset(dataset, path: str) -> None:
    where = f"HDF5 dataset '{dataset.name}'"
    if dataset.external:
        raise _mk_err(path, f"{where} stores its data in another file; only self-contained "
                            "files are read")
    if dataset.is_virtual:
        raise _mk_err(path, f"{where} is a virtual dataset (data in other files)")
    if dataset.size > MAX_TENSOR_ELEMENTS:
        raise _mk_err(path, f"{where} has {dataset.size} elements; at most "
                            f"{MAX_TENSOR_ELEMENTS} are read")
    stored = dataset.id.get_storage_size()
    if dataset.nbytes > _MAX_HDF5_RATIO * stored + 2**20:
        raise _mk_err(path, f"{where} unpacks {stored} stored bytes to {dataset.nbytes} "
                            "(a decompression bomb?)")


def _child(group, key: str, path: str):
    if key not in group:
        raise _mk_err(path, f"no HDF5 object '{key}' in '{group.name}'")
    return group[key]


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


# ---------------------------------------------------------------- the graph

def _parse_model_config(top: dict, path: str) -> KerasModel:
    if isinstance(top, str):
        top = parse_json(top, f"{path}: model config")
    if not isinstance(top, dict):
        raise _mk_err(path, "the model config is not a JSON object")
    class_name = top.get("class_name", "")
    if class_name == "Sequential":
        raise _mk_err(path, "a Sequential model cannot be an encoder-decoder; save the "
                            "functional training model (two inputs: source and target)")
    config = top.get("config")
    if class_name not in ("Functional", "Model") or not isinstance(config, dict) or \
            "layers" not in config:
        raise _mk_err(path, f"expected a functional Keras model, found {class_name or 'no'} "
                            "model config (subclassed models keep their graph in Python code "
                            "and cannot be read; rebuild them with the functional API)")
    if not isinstance(config["layers"], list):
        raise _mk_err(path, "the model config's layers must be a list")
    layers: dict[str, Layer] = {}
    for entry in config["layers"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
            raise _mk_err(path, f"a layer entry is not a layer config: {str(entry)[:100]}")
        name = entry.get("name") or entry.get("config", {}).get("name")
        if not isinstance(name, str) or not isinstance(entry.get("class_name"), str):
            raise _mk_err(path, f"a layer has no name or class_name: {str(entry)[:100]}")
        nodes = entry.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            raise _mk_err(path, f"layer '{name}': inbound_nodes must be a list")
        calls = [_parse_node(node, path, name) for node in nodes]
        layers[name] = Layer(name, entry["class_name"], entry.get("config", {}), calls)
    return KerasModel(path, class_name, layers, _refs(config.get("input_layers"), path),
                      _refs(config.get("output_layers"), path), {}, {})


def _refs(items, path: str) -> list[Ref]:
    # [name, node, index] or a list of those (or, for a single tensor, just one)
    if isinstance(items, list) and items and isinstance(items[0], str):
        items = [items]
    if not isinstance(items, list) or not all(
            isinstance(i, list) and len(i) >= 3 and isinstance(i[0], str)
            and type(i[1]) is int and type(i[2]) is int for i in items):
        raise _mk_err(path, f"model inputs/outputs must be [layer, node, index] lists, got "
                            f"{str(items)[:100]}")
    return [Ref(i[0], i[1], i[2]) for i in items]


def _is_keras3_tensor(obj) -> bool:
    return isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__"


def _collect_keras3(obj, out: list) -> None:
    if _is_keras3_tensor(obj):
        history = obj.get("config", {}).get("keras_history") \
            if isinstance(obj.get("config"), dict) else None
        if not isinstance(history, list) or len(history) < 3 or \
                not isinstance(history[0], str) or type(history[1]) is not int or \
                type(history[2]) is not int:
            raise ModelError(f"a Keras tensor has a malformed keras_history: {str(obj)[:100]}")
        out.append(Ref(history[0], history[1], history[2]))
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
        keys = sorted((k for k in arrays.keys()), key=_numeric_first)
        if keys:
            found.append((prefix, [np.array(arrays[k]) for k in keys]))
    for key in sorted(group.keys()):
        if key == "vars" or not isinstance(group[key], h5py.Group):
            continue
        found.extend(_vars_in(group[key], f"{prefix}/{key}" if prefix else key))
    return found


def _numeric_first(key: str):
    """Sort key of `vars` entries: 0, 1, 2, ... 10 by number, anything else after."""
    return (0, int(key), "") if key.isascii() and key.isdigit() else (1, 0, key)


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
