"""What a path holds when rnnsearch expected something else: another toolkit's model
directory (CTranslate2, Hugging Face Transformers, Marian), a framework's checkpoint or
export (PyTorch, OpenNMT-py, JoeyNMT, ONNX, Keras), or a file where a directory belongs.

Errors about the wrong kind of input name what it is and the command that reads it,
instead of the first field that fails to parse. Nothing here unpickles or imports a
framework: checkpoints are recognised from the strings their pickle holds.
"""
from __future__ import annotations

import io
import os
import pickletools
import zipfile

from .errors import ModelError
from .safe_files import load_json

# a pickled dictionary holding all of these keys is a framework's training checkpoint
_CHECKPOINT_KEYS = {
    "OpenNMT-py": {"model", "generator", "vocab", "opt"},
    "JoeyNMT": {"model_state", "steps"},
}
_CONVERT_FORMAT = {"OpenNMT-py": "opennmt-py", "JoeyNMT": "joeynmt"}
_PICKLE_READ_LIMIT = 64 * 1024 * 1024


def pickle_strings(path: str) -> set[str]:
    """The strings of a torch.save file's pickle (zip or legacy format) without running it;
    empty if it cannot be read."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
                if archive.getinfo(name).file_size > _PICKLE_READ_LIMIT:
                    return set()
                data = archive.read(name)
        else:
            with open(path, "rb") as f:
                data = f.read(_PICKLE_READ_LIMIT)
        strings = set()
        for _, argument, _ in pickletools.genops(io.BytesIO(data)):
            if isinstance(argument, str):
                strings.add(argument)
        return strings
    except Exception:  # noqa: BLE001 - anything unreadable is simply not recognised
        return set()


def checkpoint_framework(path: str) -> str | None:
    """"OpenNMT-py" or "JoeyNMT" when the checkpoint file is one of theirs."""
    strings = pickle_strings(path)
    for framework, keys in _CHECKPOINT_KEYS.items():
        if keys <= strings:
            return framework
    return None


def convert_hint(framework: str, path: str) -> str:
    """The command that converts a framework's checkpoint (or JoeyNMT directory)."""
    return f"rnnsearch convert --from {_CONVERT_FORMAT[framework]} {path} -o MODEL_DIR"


def describe_file(path: str) -> str:
    """What a file is, as a model input, and how to use it."""
    name = os.path.basename(path)
    extension = os.path.splitext(name)[1].lower()
    if extension in (".pt", ".pth", ".ckpt", ".bin"):
        framework = checkpoint_framework(path)
        if framework:
            return f"a checkpoint of {framework}; convert it first: {convert_hint(framework, path)}"
        return ("a PyTorch checkpoint; convert it first with rnnsearch convert (--from torch "
                "for a state_dict of your own modules, --from opennmt-py, --from joeynmt)")
    if extension == ".onnx":
        return "an ONNX graph; convert the encoder and decoder graphs with rnnsearch convert --from onnx"
    if extension in (".keras", ".h5"):
        return "a Keras model; convert it with rnnsearch convert --from keras"
    if extension == ".npz":
        return "a NumPy archive (a Marian model?); see rnnsearch convert --help for the formats"
    if name in ("config.json", "model.safetensors") or extension in (".safetensors", ".txt"):
        return "one file of a model directory; pass the directory that holds it"
    return "a file, not a model directory"


def describe_directory(path: str) -> str | None:
    """What a directory that is not an rnnsearch model directory holds, or None when
    nothing is recognised."""
    try:
        names = set(os.listdir(path))
    except OSError:
        return None
    config = {}
    if "config.json" in names:
        try:   # bounded, regular file only, depth-checked (docs/security.md)
            config = load_json(os.path.join(path, "config.json"), "config file")
        except ModelError:
            config = {}
        config = config if isinstance(config, dict) else {}
    if "model.bin" in names and any(n.endswith(("vocabulary.json", "vocabulary.txt"))
                                    for n in names):
        return ("a CTranslate2 model directory (model.bin), which rnnsearch does not read; "
                "convert the original training checkpoint with rnnsearch convert")
    hf_keys = {"model_type", "architectures", "transformers_version"} & set(config)
    if hf_keys:
        kind = f" (model_type {config['model_type']!r})" if "model_type" in config else ""
        return (f"a Hugging Face Transformers model directory{kind}, which rnnsearch does not "
                "read; rnnsearch convert --help lists the formats it converts")
    if "config.yaml" in names and any(n.endswith(".ckpt") for n in names):
        return f"a JoeyNMT model directory; convert it first: {convert_hint('JoeyNMT', path)}"
    if any(n.endswith(".npz") for n in names) and any(n.endswith((".yml", ".yaml", ".spm"))
                                                      for n in names):
        return "a Marian model directory; rnnsearch convert --help lists the formats it converts"
    for extension in (".pt", ".onnx", ".keras", ".h5"):
        found = sorted(n for n in names if n.endswith(extension))
        if found:
            return f"not a model directory; it holds {found[0]}, which is " + \
                describe_file(os.path.join(path, found[0]))
    return None
