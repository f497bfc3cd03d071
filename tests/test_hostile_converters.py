"""Hostile converter inputs (issue 13, items 4, 5, 8): nothing read outside the input's
folder on the input's say-so, no hang or memory blow-up from a tiny file, every failure a
ModelError. The inputs start from the fuzzers' real seed files (tools/fuzz/base, made by
the frameworks themselves: tools/fuzz/make_corpus.py) and the JoeyNMT test fixture."""
import argparse
import json
import os
import shutil
import time
import zipfile

import numpy as np
import pytest

import rnnsearch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = os.path.join(ROOT, "tools", "fuzz", "base")
JOEYNMT = os.path.join(ROOT, "tests", "fixtures", "joeynmt", "gru_bahdanau_bridge_feed")


def _copy(source, tmp_path, name="input"):
    path = tmp_path / name
    shutil.copytree(source, path, ignore=shutil.ignore_patterns("expected.json"))
    return path


# ---------------------------------------------------------------- JoeyNMT

def _joeynmt(folder, output):
    from rnnsearch.convert.joeynmt import convert
    convert(argparse.Namespace(model=str(folder), config=None, src_vocab=None,
                               trg_vocab=None, output=str(output)))
    return (output / "source_vocabulary.txt").read_text().split("\n")


@pytest.mark.parametrize("voc_file", ["ABSOLUTE", "../outside/vocab.txt"])
def test_joeynmt_voc_file_outside_the_folder_is_not_read(tmp_path, voc_file):
    pytest.importorskip("torch")
    pytest.importorskip("yaml")
    import yaml
    folder = _copy(JOEYNMT, tmp_path)
    outside = tmp_path / "outside" / "vocab.txt"
    outside.parent.mkdir()
    outside.write_text("secret-token\nanother-secret\n")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["data"]["src"]["voc_file"] = str(outside) if voc_file == "ABSOLUTE" else voc_file
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    tokens = _joeynmt(folder, tmp_path / "out")
    assert "secret-token" not in tokens          # the fixture's own src_vocab.txt was read
    assert set((folder / "src_vocab.txt").read_text().split()) <= set(tokens)
    os.unlink(folder / "src_vocab.txt")          # and without it: an error, still no read
    with pytest.raises(rnnsearch.ModelError, match="not a file inside"):
        _joeynmt(folder, tmp_path / "out2")


def test_joeynmt_voc_file_inside_the_folder_is_read(tmp_path):
    pytest.importorskip("torch")
    import yaml
    folder = _copy(JOEYNMT, tmp_path)
    os.makedirs(folder / "vocabs")
    shutil.move(folder / "src_vocab.txt", folder / "vocabs" / "source.txt")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["data"]["src"]["voc_file"] = "vocabs/source.txt"
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    _joeynmt(folder, tmp_path / "out")


@pytest.mark.parametrize("text, match", [
    ("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}]\n" for i in range(9)), "values"),          # "billion laughs"
    ("[" * 20000 + "]" * 20000, "nested"),
    ("model: {encoder: 5}\n", "model.encoder must be a mapping"),
    ("model: {}\ndata: {special_symbols: {unk_token: [1]}}\n", "unk_token"),
    ("model: {}\ndata: {src: {voc_file: [1]}}\n", "voc_file"),
    ("\x00\x01", "cannot parse"),
])
def test_joeynmt_config_attacks(tmp_path, text, match):
    pytest.importorskip("torch")
    folder = _copy(JOEYNMT, tmp_path)
    (folder / "config.yaml").write_text(text)
    start = time.monotonic()
    with pytest.raises(rnnsearch.ModelError, match=match):
        _joeynmt(folder, tmp_path / "out")
    assert time.monotonic() - start < 20


# ---------------------------------------------------------------- PyTorch checkpoints

def test_stride_zero_tensor_is_bounded_before_copying(tmp_path):
    torch = pytest.importorskip("torch")
    from rnnsearch.convert.torch import convert
    folder = _copy(os.path.join(BASE, "torch"), tmp_path)
    state = torch.load(folder / "model.pt")
    state["src_emb.weight"] = torch.zeros(1).expand(2**20, 2**20)   # 4 TB as float32
    torch.save(state, folder / "model.pt")
    assert (folder / "model.pt").stat().st_size < 10**6
    args = argparse.Namespace(
        checkpoint=str(folder / "model.pt"), mapping=str(folder / "mapping.json"),
        config=str(folder / "config.json"), state_dict_key=None,
        source_vocab=str(folder / "source.txt"), target_vocab=str(folder / "target.txt"),
        output=str(tmp_path / "out"))
    with pytest.raises(rnnsearch.ModelError, match="elements; at most"):
        convert(args)


# ---------------------------------------------------------------- Keras

def _keras(path, tmp_path, output="out"):
    from rnnsearch.convert.keras import convert_keras
    folder = os.path.join(BASE, "keras")
    return convert_keras(str(path), str(tmp_path / output), os.path.join(folder, "source.json"),
                         os.path.join(folder, "target.json"), bos="<start>", eos="<end>")


def test_keras_seed_converts(tmp_path):
    pytest.importorskip("h5py")
    _keras(os.path.join(BASE, "keras", "model.keras"), tmp_path)
    _keras(os.path.join(BASE, "keras", "model.h5"), tmp_path, "out2")


def test_keras_h5_external_link_is_refused(tmp_path):
    h5py = pytest.importorskip("h5py")
    outside = tmp_path / "outside.h5"
    with h5py.File(outside, "w") as f:
        f["secret"] = np.arange(4.0)
    path = tmp_path / "model.h5"
    shutil.copy(os.path.join(BASE, "keras", "model.h5"), path)
    with h5py.File(path, "a") as f:
        f["model_weights"]["out"]["link"] = h5py.ExternalLink(str(outside), "/secret")
    with pytest.raises(rnnsearch.ModelError, match="link to another file"):
        _keras(path, tmp_path)


def test_keras_h5_external_storage_is_refused(tmp_path):
    h5py = pytest.importorskip("h5py")
    outside = tmp_path / "raw.bin"
    outside.write_bytes(np.arange(16, dtype="<f4").tobytes())
    path = tmp_path / "model.h5"
    shutil.copy(os.path.join(BASE, "keras", "model.h5"), path)
    with h5py.File(path, "a") as f:
        group = f["model_weights"]["out"]
        group.create_dataset("external", shape=(16,), dtype="<f4",
                             external=[(str(outside), 0, 64)])
    with pytest.raises(rnnsearch.ModelError, match="stores its data in another file"):
        _keras(path, tmp_path)


def test_keras_corrupt_h5_is_a_model_error(tmp_path):
    pytest.importorskip("h5py")
    data = open(os.path.join(BASE, "keras", "model.h5"), "rb").read()
    for cut in (100, 2000, len(data) // 2, len(data) - 10):
        path = tmp_path / f"cut{cut}.h5"
        path.write_bytes(data[:cut])
        with pytest.raises(rnnsearch.ModelError):
            _keras(path, tmp_path)


def test_keras_zip_bomb_is_refused_before_unpacking(tmp_path, monkeypatch):
    pytest.importorskip("h5py")
    from rnnsearch.convert.keras import files
    monkeypatch.setattr(files, "max_archive_member", lambda: 8 * 2**20)
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(os.path.join(BASE, "keras", "model.keras")) as source, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("config.json", source.read("config.json"))
        with bomb.open("model.weights.h5", "w") as member:   # 64 MB of zeros, ~64 KB packed
            for _ in range(64):
                member.write(bytes(2**20))
    assert path.stat().st_size < 2**20
    with pytest.raises(rnnsearch.ModelError, match="unpacks to"):
        _keras(path, tmp_path)


@pytest.mark.parametrize("loop", ["rnn", "dropout"])
def test_keras_layer_reading_itself_is_refused(tmp_path, loop):
    pytest.importorskip("h5py")
    source = os.path.join(BASE, "keras", "model.keras")
    with zipfile.ZipFile(source) as z:
        config = json.loads(z.read("config.json"))
        members = {name: z.read(name) for name in z.namelist()}
    layers = config["config"]["layers"]
    if loop == "rnn":          # the decoder LSTM reads its own output
        dec = next(layer for layer in layers if layer["name"] == "dec")
        dec["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = ["dec", 0, 0]
    else:                      # a Dropout before the output reads itself
        out = next(layer for layer in layers if layer["name"] == "out")
        out["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = ["drop", 0, 0]
        layers.append({"module": "keras.layers", "class_name": "Dropout", "name": "drop",
                       "config": {"name": "drop", "rate": 0.1},
                       "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__",
                                                    "config": {"keras_history": ["drop", 0, 0]}}],
                                          "kwargs": {}}]})
    members["config.json"] = json.dumps(config).encode()
    path = tmp_path / "loop.keras"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    start = time.monotonic()
    with pytest.raises(rnnsearch.ModelError, match="cycle"):
        _keras(path, tmp_path)
    assert time.monotonic() - start < 20


# ---------------------------------------------------------------- ONNX

def _onnx(encoder, decoder, tmp_path):
    from rnnsearch.convert.onnx import convert_onnx
    folder = os.path.join(BASE, "onnx")
    return convert_onnx(str(encoder), str(decoder), str(tmp_path / "out"),
                        source_vocab=os.path.join(folder, "source.txt"),
                        target_vocab=os.path.join(folder, "target.txt"))


def _edited_encoder(tmp_path, edit, name="encoder.onnx"):
    """The base encoder graph after edit(model), written to tmp_path / name."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(os.path.join(BASE, "onnx", "encoder.onnx"))
    edit(model)
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def _with_nodes(tmp_path, nodes, initializers=(), name="encoder.onnx"):
    def add(model):
        model.graph.initializer.extend(initializers)
        model.graph.node.extend(nodes)
    return _edited_encoder(tmp_path, add, name)


def test_onnx_initializer_with_huge_dims_is_refused_at_once(tmp_path):
    onnx = pytest.importorskip("onnx")
    short = onnx.TensorProto(name="short", data_type=onnx.TensorProto.FLOAT, dims=[4, 4],
                             float_data=[0.0])

    def huge_embedding(model):
        embedding = next(i for i in model.graph.initializer if len(i.dims) == 2)
        del embedding.dims[:]
        embedding.dims.extend([2**40, 4])      # the 161-byte file's trick: dims, no data
    path = _edited_encoder(tmp_path, huge_embedding)
    start = time.monotonic()
    with pytest.raises(rnnsearch.ModelError, match="elements"):
        _onnx(path, os.path.join(BASE, "onnx", "decoder.onnx"), tmp_path)
    path = _with_nodes(tmp_path, [], [short], "encoder2.onnx")
    with pytest.raises(rnnsearch.ModelError, match="holds 1"):
        _onnx(path, os.path.join(BASE, "onnx", "decoder.onnx"), tmp_path)
    assert time.monotonic() - start < 20


def test_onnx_output_no_node_computes_is_refused(tmp_path):
    """A graph output renamed away from the node that made it (a fuzzing find)."""
    path = _edited_encoder(tmp_path, lambda model: setattr(model.graph.output[0], "name",
                                                           "mexory"))
    with pytest.raises(rnnsearch.ModelError, match="encoder graph: its output 'mexory' is "
                                                   "computed by no node"):
        _onnx(path, os.path.join(BASE, "onnx", "decoder.onnx"), tmp_path)


def test_onnx_input_without_element_type_is_refused(tmp_path):
    """elem_type 0 (UNDEFINED) on a graph input (a fuzzing find)."""
    path = _edited_encoder(tmp_path, lambda model: setattr(
        model.graph.input[0].type.tensor_type, "elem_type", 0))
    with pytest.raises(rnnsearch.ModelError, match="graph input 'src' has no tensor element "
                                                   "type ONNX knows"):
        _onnx(path, os.path.join(BASE, "onnx", "decoder.onnx"), tmp_path)


REGRESSIONS_ONNX = os.path.join(os.path.dirname(__file__), "..", "tools", "fuzz", "regressions",
                                "onnx")


def test_onnx_encoder_input_weights_bias_and_width_that_disagree_are_refused(tmp_path):
    """A fuzzing find (tools/fuzz/regressions/onnx): a GRU whose input weights, bias and
    input width disagree; it reached NumPy's broadcasting before."""
    pytest.importorskip("onnx")
    with pytest.raises(rnnsearch.ModelError, match=r"encoder node '/rnn/GRU' \(GRU\): its "
                                                   r"input weights \[18, 4\], input bias "
                                                   r"\[36\] and input width 4 disagree"):
        _onnx(os.path.join(REGRESSIONS_ONNX, "guarded-encoder-input-bias-width"),
              os.path.join(BASE, "onnx", "decoder.onnx"), tmp_path)


def test_onnx_constant_node_without_outputs_is_ignored(tmp_path):
    """A fuzzing find: a Constant node with no output (an IndexError before) computes
    nothing the graph uses, so the graph converts; the converter's own check runs the
    converted model against the graph."""
    pytest.importorskip("onnx")
    config = _onnx(os.path.join(REGRESSIONS_ONNX, "guarded-constant-without-output"),
                   os.path.join(BASE, "onnx", "decoder.onnx"), tmp_path)
    assert config["encoder"]["cell"] == "gru"
    assert rnnsearch.Translator(str(tmp_path / "out")).translate(["s1 s2"], beam_size=1)


def test_onnx_constant_of_shape_bomb_is_refused_before_allocating(tmp_path):
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    shape = h.make_tensor("bomb_shape", onnx.TensorProto.INT64, [1], [2**28])   # 1 GB
    nodes = [h.make_node("ConstantOfShape", ["bomb_shape"], [f"bomb{i}"], name=f"bomb{i}")
             for i in range(10)]
    path = _with_nodes(tmp_path, nodes, [shape])
    start = time.monotonic()
    with pytest.raises(rnnsearch.ModelError, match="ConstantOfShape"):
        _onnx(path, os.path.join(BASE, "onnx", "decoder.onnx"), tmp_path)
    assert time.monotonic() - start < 60


def test_onnx_many_medium_tensors_hit_the_total_budget(tmp_path, monkeypatch):
    onnx = pytest.importorskip("onnx")
    from rnnsearch.convert.onnx import budget
    monkeypatch.setattr(budget, "MIN_TOTAL_BYTES", 32 * 2**20)
    monkeypatch.setattr(budget, "MIN_TENSOR_BYTES", 16 * 2**20)
    h = onnx.helper
    shape = h.make_tensor("medium_shape", onnx.TensorProto.INT64, [1], [2**20])   # 4 MB
    nodes = [h.make_node("ConstantOfShape", ["medium_shape"], [f"medium{i}"], name=f"m{i}")
             for i in range(12)]
    path = _with_nodes(tmp_path, nodes, [shape])
    with pytest.raises(rnnsearch.ModelError, match="more than"):
        _onnx(path, os.path.join(BASE, "onnx", "decoder.onnx"), tmp_path)


def test_onnx_broadcast_bomb_is_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    h = onnx.helper
    column = h.make_tensor("column", onnx.TensorProto.FLOAT, [2**16, 1], [1.0] * 2**16)
    row = h.make_tensor("row", onnx.TensorProto.FLOAT, [1, 2**16], [1.0] * 2**16)
    path = _with_nodes(tmp_path, [h.make_node("Add", ["column", "row"], ["square"])],
                       [column, row])                          # 2^32 floats from 512 KB
    with pytest.raises(rnnsearch.ModelError, match="Add"):
        _onnx(path, os.path.join(BASE, "onnx", "decoder.onnx"), tmp_path)


def test_onnx_seed_converts(tmp_path):
    pytest.importorskip("onnx")
    _onnx(os.path.join(BASE, "onnx", "encoder.onnx"), os.path.join(BASE, "onnx", "decoder.onnx"),
          tmp_path)


# ---------------------------------------------------------------- every converter

def test_converter_inputs_must_be_regular_files(tmp_path):
    pytest.importorskip("torch")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    from rnnsearch.convert.opennmt import convert
    with pytest.raises(rnnsearch.ModelError, match="not a regular file"):
        convert(argparse.Namespace(checkpoint=str(fifo), output=str(tmp_path / "o")))
    with pytest.raises(rnnsearch.ModelError, match="not a regular file"):
        _keras(fifo, tmp_path)
