"""Write the fuzzers' seed inputs and the fixed files they are read with (tools/fuzz/).

    python tools/fuzz/make_corpus.py

Everything is made by the real frameworks (PyTorch, torch.onnx.export, Keras 3 on the
torch backend) from tiny models, so the seeds are real files of every kind a loader or
converter reads; JoeyNMT and OpenNMT-py inputs come from the committed test fixtures,
made by those frameworks (tests/fixtures/README.md). Output, committed:
    base/<family>/...      the files a target keeps fixed while it fuzzes one of them
    corpus/<target>/seed-* the seeds of each target's fuzzed file
"""
from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BASE = os.path.join(HERE, "base")
CORPUS = os.path.join(HERE, "corpus")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
SRC = SPECIALS + [f"s{i}" for i in range(8)]
TGT = SPECIALS + [f"t{i}" for i in range(8)]

TINY = {"embedding_size": 4, "hidden_size": 4}
# biGRU encoder, dense bridge, additive attention, LSTM Bahdanau decoder with maxout
MODEL_CONFIG = dict(format="rnnsearch-model", format_version=1, bridge={"type": "dense"},
                    attention={"score": "additive", "size": 4},
                    encoder=dict(TINY, cell="gru", bidirectional=True),
                    decoder=dict(TINY, type="bahdanau", cell="lstm", readout="maxout",
                                 readout_size=4))


def _seed(target: str, name: str, data: bytes) -> None:
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"seed-{name}"), "wb") as f:
        f.write(data)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def model_dir() -> None:
    """A tiny random model directory, and its files as seeds (plus an int8 variant)."""
    from rnnsearch.quantize import quantize_model_dir
    from rnnsearch.random_model import write_random_model
    folder = os.path.join(BASE, "model")
    write_random_model(folder, MODEL_CONFIG, len(SRC) - 4, len(TGT) - 4, seed=3)
    for name in ("config.json", "model.safetensors", "source_vocabulary.txt"):
        target = {"config.json": "config", "model.safetensors": "safetensors",
                  "source_vocabulary.txt": "vocab"}[name]
        _seed(target, "tiny", _read(os.path.join(folder, name)))
    _seed("vmap", "tiny", "s0\tt0 t1\ns1 s2\tt2 <unk>\n\tt3\ns3\tnotatoken\n".encode())
    int8 = os.path.join(BASE, "model-int8")
    quantize_model_dir(folder, int8)
    _seed("safetensors", "tiny-int8", _read(os.path.join(int8, "model.safetensors")))
    shutil.rmtree(int8)
    luong = dict(MODEL_CONFIG, bridge={"type": "last"},
                 attention={"score": "general"},
                 decoder={"type": "luong", "embedding_size": 4, "cell": "gru",
                          "hidden_size": 8, "input_feeding": True},
                 source={"add_eos": True, "max_length": 16})
    _seed("config", "luong", json.dumps(luong, indent=1).encode())
    # the architecture target's bytes are choices: strings that build a valid model of
    # each kind (find_architecture_seeds.py; rerun it alone when the schema changes)
    from fuzz.find_architecture_seeds import search
    for name, data in search(30000, seed=0).items():
        _seed("architecture", name, data)


def joeynmt() -> None:
    """(the fixed files are the fixture itself, tests/fixtures/joeynmt/...)"""
    src = os.path.join(FIXTURES, "joeynmt", "gru_bahdanau_bridge_feed")
    _seed("joeynmt_config", "gru_bahdanau", _read(os.path.join(src, "config.yaml")))
    _seed("joeynmt_config", "lstm_luong",
          _read(os.path.join(FIXTURES, "joeynmt", "lstm_luong_last_2layers", "config.yaml")))
    _seed("joeynmt_checkpoint", "gru_bahdanau", _read(os.path.join(src, "best.ckpt")))


def opennmt() -> None:
    for name in ("brnn_gru_mlp_feed", "v2_rnn_lstm_general_bridge"):
        _seed("opennmt_checkpoint", name,
              _read(os.path.join(FIXTURES, "opennmt", name, "model.pt")))


def torch_state_dict() -> None:
    """A tiny user-style PyTorch seq2seq (GRU encoder, additive attention, GRUCell
    decoder) saved as a plain state_dict, with its mapping and architecture JSON."""
    import torch
    from torch import nn
    torch.manual_seed(0)
    model = nn.ModuleDict({"src_emb": nn.Embedding(len(SRC), 4),
                           "enc": nn.GRU(4, 4, batch_first=True),
                           "tgt_emb": nn.Embedding(len(TGT), 4),
                           "W": nn.Linear(4, 3), "U": nn.Linear(4, 3, bias=False),
                           "v": nn.Linear(3, 1, bias=False),
                           "cell": nn.GRUCell(8, 4), "out": nn.Linear(12, len(TGT))})
    mapping = {"encoder.embedding": "src_emb", "encoder.rnn": "enc",
               "decoder.embedding": "tgt_emb", "attention.key": "W", "attention.query": "U",
               "attention.v": "v",
               "decoder.rnn": {"module": "cell", "concat_order": ["context", "embedding"]},
               "decoder.output": {"module": "out",
                                  "concat_order": ["state", "context", "embedding"]}}
    config = {"encoder": {"embedding_size": 4, "cell": "gru", "hidden_size": 4},
              "bridge": {"type": "last"},
              "attention": {"score": "additive", "size": 3},
              "decoder": {"type": "bahdanau", "embedding_size": 4, "cell": "gru",
                          "hidden_size": 4}}
    folder = os.path.join(BASE, "torch")
    os.makedirs(folder)
    path = os.path.join(folder, "model.pt")
    torch.save(model.state_dict(), path)
    for name, value in (("mapping.json", mapping), ("config.json", config)):
        with open(os.path.join(folder, name), "w") as f:
            json.dump(value, f, indent=1)
    for name, tokens in (("source.txt", SRC), ("target.txt", TGT)):
        with open(os.path.join(folder, name), "w") as f:
            f.write("\n".join(tokens) + "\n")
    _seed("torch_checkpoint", "gru_bahdanau", _read(path))
    _seed("torch_json", "mapping", json.dumps(mapping).encode())
    # (a leading space makes the torch_json target fuzz the architecture JSON)
    _seed("torch_json", "config", b" " + json.dumps(config).encode())


def onnx_graphs() -> None:
    """A tiny encoder (GRU) and decoder step (GRUCell, dot attention, Luong output)
    exported with torch.onnx.export."""
    import torch
    from torch import nn
    torch.manual_seed(0)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(len(SRC), 4)
            self.rnn = nn.GRU(4, 6, batch_first=True)

        def forward(self, src):
            memory, h = self.rnn(self.emb(src))
            return memory, h[0]

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(len(TGT), 4)
            self.cell = nn.GRUCell(4, 6)
            self.out = nn.Linear(12, len(TGT))

        def forward(self, y, h, memory):
            s = self.cell(self.emb(y), h)
            a = torch.softmax(torch.bmm(memory, s.unsqueeze(2)).squeeze(2), 1)
            c = torch.bmm(a.unsqueeze(1), memory).squeeze(1)
            return torch.log_softmax(self.out(torch.cat([c, s], 1)), 1), s

    folder = os.path.join(BASE, "onnx")
    os.makedirs(folder)
    src = torch.zeros(2, 5, dtype=torch.long)
    enc, dec = Encoder().eval(), Decoder().eval()
    memory, h = enc(src)
    torch.onnx.export(enc, (src,), os.path.join(folder, "encoder.onnx"),
                      input_names=["src"], output_names=["memory", "h"],
                      dynamic_axes={"src": {0: "b", 1: "s"}, "memory": {0: "b", 1: "s"},
                                    "h": {0: "b"}}, dynamo=False)
    torch.onnx.export(dec, (torch.zeros(2, dtype=torch.long), h, memory),
                      os.path.join(folder, "decoder.onnx"),
                      input_names=["y", "h", "memory"], output_names=["logp", "h_out"],
                      dynamic_axes={"y": {0: "b"}, "h": {0: "b"}, "memory": {0: "b", 1: "s"},
                                    "logp": {0: "b"}, "h_out": {0: "b"}}, dynamo=False)
    for name, tokens in (("source.txt", SRC), ("target.txt", TGT)):
        with open(os.path.join(folder, name), "w") as f:
            f.write("\n".join(tokens) + "\n")
    _seed("onnx", "encoder", _read(os.path.join(folder, "encoder.onnx")))
    _seed("onnx", "decoder", _read(os.path.join(folder, "decoder.onnx")))


def onnx_keras_graphs() -> None:
    """The Keras lstm_seq2seq example with dot attention as tf2onnx exports it (one-hot
    inputs, Keras's 2-D states, probabilities out): the committed test fixture, made on
    TensorFlow by tools/make_tf2onnx_fixtures.py; its character tables as vocabularies."""
    fixture = os.path.join(FIXTURES, "one_hot", "tf2onnx")
    folder = os.path.join(BASE, "onnx_keras")
    os.makedirs(folder, exist_ok=True)
    for name in ("encoder.onnx", "decoder.onnx"):
        shutil.copy(os.path.join(fixture, "dot_attention", name), os.path.join(folder, name))
    with open(os.path.join(fixture, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from one_hot_task import vocabulary_tokens
    for name, table in (("source.txt", summary["input_token_index"]),
                        ("target.txt", summary["target_token_index"])):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write("\n".join(vocabulary_tokens(table)) + "\n")
    _seed("onnx", "tf2onnx-encoder", _read(os.path.join(folder, "encoder.onnx")))
    _seed("onnx", "tf2onnx-decoder", _read(os.path.join(folder, "decoder.onnx")))


def keras_model() -> None:
    """A tiny tutorial-style Keras 3 training model (LSTM encoder, LSTM decoder from its
    states, dot Attention, Concatenate, Dense softmax), saved as .keras and legacy .h5,
    with Keras Tokenizer-style vocabularies."""
    os.environ["KERAS_BACKEND"] = "torch"
    import keras
    L = keras.layers
    keras.utils.set_random_seed(0)
    src, tgt = keras.Input((None,), name="src"), keras.Input((None,), name="tgt")
    enc_out, h, c = L.LSTM(6, return_sequences=True, return_state=True, name="enc")(
        L.Embedding(10, 4, mask_zero=True, name="src_emb")(src))
    dec_out, _, _ = L.LSTM(6, return_sequences=True, return_state=True, name="dec")(
        L.Embedding(9, 4, mask_zero=True, name="tgt_emb")(tgt), initial_state=[h, c])
    context = L.Attention(name="att")([dec_out, enc_out])
    out = L.Dense(9, activation="softmax", name="out")(L.Concatenate()([context, dec_out]))
    model = keras.Model([src, tgt], out)
    folder = os.path.join(BASE, "keras")
    os.makedirs(folder)
    model.save(os.path.join(folder, "model.keras"))
    model.save(os.path.join(folder, "model.h5"))
    source = {"<unk>": 1, **{f"s{i}": i + 2 for i in range(8)}}
    target = {"<start>": 1, "<end>": 2, **{f"t{i}": i + 3 for i in range(6)}}
    with open(os.path.join(folder, "source.json"), "w") as f:
        json.dump(source, f)
    tokenizer = {"class_name": "Tokenizer",
                 "config": {"word_index": json.dumps(target), "oov_token": None,
                            "lower": True, "char_level": False, "filters": ""}}
    with open(os.path.join(folder, "target.json"), "w") as f:
        json.dump(tokenizer, f)
    _seed("keras_archive", "lstm_attention", _read(os.path.join(folder, "model.keras")))
    _seed("keras_h5", "lstm_attention", _read(os.path.join(folder, "model.h5")))
    _seed("keras_vocab", "word_index", _read(os.path.join(folder, "source.json")))
    _seed("keras_vocab", "tokenizer", _read(os.path.join(folder, "target.json")))
    _seed("keras_vocab", "lines", ("\n".join(["", "<unk>"] + SRC[4:]) + "\n").encode())


def _dict(name: str, tokens) -> None:
    """A libFuzzer dictionary (tools/fuzz/dicts/NAME.dict): words the format is made of."""
    folder = os.path.join(HERE, "dicts")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{name}.dict"), "w") as f:
        for token in sorted(set(tokens)):
            f.write(json.dumps(token) + "\n")


def dictionaries() -> None:
    from rnnsearch import model_spec
    words = ['{', '}', '[', ']', ':', ',', 'null', 'true', 'false', '-1', '0', '1',
             '1e999', '4294967296', '""']
    schema = []
    for section, fields in model_spec._SCHEMA.items():
        schema.append(f'"{section}"')
        if isinstance(fields, dict):
            schema += [f'"{key}"' for key in fields]
    schema += [f'"{v}"' for choices in model_spec._CHOICES.values() for v in choices]
    _dict("config", words + schema + ['"rnnsearch-model"', '"format_version"'])
    _dict("safetensors", words + ['"F32"', '"I8"', '"F16"', '"dtype"', '"shape"',
                                  '"data_offsets"', '"__metadata__"', '"encoder.embedding.weight"',
                                  '"decoder.output.weight"', '"attention.v"'])
    _dict("joeynmt_config", ["model:", "encoder:", "decoder:", "data:", "src:", "trg:",
                             "rnn_type:", "type:", "recurrent", "hidden_size:",
                             "emb_size:", "attention:", "bahdanau", "luong", "init_hidden:",
                             "bridge", "last", "zero", "voc_file:", "level:", "char",
                             "special_symbols:", "unk_id:", "lang_tags:", "&a", "*a", "!!",
                             "- ", ": ", "[", "]", "{", "}", "null", "1e999", "-1"])
    _dict("torch_json", words + ['"module"', '"concat_order"', '"context"', '"embedding"',
                                 '"state"'] + schema)


MARIAN = os.path.join(FIXTURES, "marian")


def marian() -> None:
    """Marian's model.npz (its options inside, as `special:model.yml`) and its YAML files,
    from the committed fixtures that Marian itself wrote (tools/make_marian_fixtures.py):
    the base folder is s2s_base; the npz seeds share its vocabularies and cover the s2s
    and Nematus styles (deep transition, layer normalisation, tied embeddings)."""
    shutil.copytree(os.path.join(MARIAN, "s2s_base"), os.path.join(BASE, "marian"),
                    ignore=shutil.ignore_patterns("expected.json"))
    for name in ("s2s_base", "s2s_deep_ln_tied", "nematus_deep_ln"):  # one vocabulary
        _seed("marian_npz", name, _read(os.path.join(MARIAN, name, "model.npz")))
    folder = os.path.join(MARIAN, "s2s_base")
    _seed("marian_yml", "vocab", _read(os.path.join(folder, "vocab.src.yml")))
    _seed("marian_yml", "decoder", _read(os.path.join(folder, "model.npz.decoder.yml")))


def feature_files() -> None:
    """`translate --features` inputs as NumPy writes them: one .npy of [N, T, F], one .npz
    of arrays [T, F] of different lengths (compressed), one Fortran-ordered .npy."""
    import io
    rng = np.random.default_rng(0)
    for name, save in (("npy", lambda f: np.save(f, rng.standard_normal((2, 3, 4), np.float32))),
                       ("npz", lambda f: np.savez_compressed(
                           f, a=rng.standard_normal((3, 4), np.float32),
                           b=rng.standard_normal((5, 4), np.float32))),
                       ("fortran", lambda f: np.save(f, np.asfortranarray(
                           rng.standard_normal((3, 4)))))):
        buffer = io.BytesIO()
        save(buffer)
        _seed("feature_file", name, buffer.getvalue())


def main() -> int:
    for folder in (BASE, CORPUS):
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.makedirs(folder)
    model_dir()
    joeynmt()
    opennmt()
    torch_state_dict()
    onnx_graphs()
    onnx_keras_graphs()
    keras_model()
    marian()
    feature_files()
    dictionaries()
    sizes = {t: len(os.listdir(os.path.join(CORPUS, t))) for t in sorted(os.listdir(CORPUS))}
    print(f"seeds: {sizes}")
    return 0


if __name__ == "__main__":
    sys.path.append(os.path.join(ROOT, "src"))   # after an installed rnnsearch
    sys.path.insert(0, os.path.dirname(HERE))   # tools/, for the fuzz package
    np.random.seed(0)
    sys.exit(main())
