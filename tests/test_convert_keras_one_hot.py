"""Keras one-hot models (the Keras example "character-level recurrent sequence-to-sequence",
lstm_seq2seq, and the attention variants users build from it), trained with real Keras 3
(torch backend) on a character task by tools/make_one_hot_fixtures.py, converted with
`rnnsearch convert --from keras`, and decoded by the engine and by Keras itself (the
example's inference models: the training model's layers, one character at a time),
greedy and beam 5: tokens identical, scores 1e-4."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

from keras_on_torch import keras, one_torch_thread  # noqa: F401 (an autouse fixture)

import rnnsearch  # noqa: E402
from rnnsearch.cli import main as cli_main  # noqa: E402
from rnnsearch.convert.keras import convert_keras  # noqa: E402

from one_hot_keras import KERAS_VARIANTS, LATENT  # noqa: E402
from one_hot_task import one_hot, texts, write_tables  # noqa: E402
from oracle_search import assert_engine_matches, assert_same_results, beam_search  # noqa: E402

L = keras.layers
MAX_LENGTH = 10
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "one_hot", "keras")


def _tables():
    with open(os.path.join(FIXTURES, "input_token_index.json"), encoding="utf-8") as f:
        input_index = json.load(f)
    with open(os.path.join(FIXTURES, "target_token_index.json"), encoding="utf-8") as f:
        return input_index, json.load(f)


class KerasInference:
    """The example's encoder_model / decoder_model: the training model's layers, the
    encoder once, the decoder one one-hot character at a time carrying [h, c]."""

    def __init__(self, model, input_index, target_index):
        self.m, self.vs, self.vt = model, len(input_index), len(target_index)
        self.attention = any(layer.name == "attention" for layer in model.layers)

    def encode(self, ids):
        x = np.eye(self.vs, dtype=np.float32)[ids][None]
        memory, h, c = self.m.get_layer("encoder")(x)
        return keras.ops.convert_to_numpy(memory), [keras.ops.convert_to_numpy(h),
                                                   keras.ops.convert_to_numpy(c)]

    def step_function(self, memory):
        def step(states, tokens):
            n = len(tokens)
            y = np.eye(self.vt, dtype=np.float32)[tokens][:, None, :]
            initial = [np.concatenate([s[k] for s in states]) for k in range(2)]
            out, h, c = self.m.get_layer("decoder")(y, initial_state=initial)
            if self.attention:
                context = self.m.get_layer("attention")([out, np.repeat(memory, n, axis=0)])
                out = self.m.get_layer("concat")([out, context])
            probs = keras.ops.convert_to_numpy(self.m.get_layer("dense")(out))[:, 0, :]
            h, c = keras.ops.convert_to_numpy(h), keras.ops.convert_to_numpy(c)
            return np.log(probs.astype(np.float64)), \
                [[h[i:i + 1], c[i:i + 1]] for i in range(n)], None
        return step


@pytest.fixture(scope="module", params=KERAS_VARIANTS)
def trained(request, tmp_path_factory):
    """(variant, directory, model path, tables, converted Translator, Keras inference)."""
    variant = request.param
    input_index, target_index = _tables()
    directory = tmp_path_factory.mktemp(variant)
    path = os.path.join(FIXTURES, f"{variant}.keras")
    src_json, tgt_json = write_tables(directory, input_index, target_index)
    out = str(directory / "converted")
    assert cli_main(["convert", "--from", "keras", path, "-o", out, "--source-vocab", src_json,
                     "--target-vocab", tgt_json, "--source-tokenizer", "chars",
                     "--target-tokenizer", "chars"]) == 0
    model = keras.models.load_model(path, compile=False)
    return (variant, directory, path, (input_index, target_index), rnnsearch.Translator(out),
            KerasInference(model, input_index, target_index))


def _held_out(input_index):
    inputs, _ = texts(12, seed=99)
    return [[input_index[c] for c in text] for text in inputs]


def test_config(trained):
    variant, _, _, (input_index, target_index), translator, _ = trained
    config = translator.config
    assert config["source"]["kind"] == "one_hot"
    assert config["source"]["feature_size"] == len(input_index)
    assert config["encoder"]["embedding_size"] == len(input_index)
    assert config["decoder"]["embedding_size"] == len(target_index)
    assert config["bridge"]["type"] == "last" and config["bridge"]["lstm_cell"] == "bridged"
    expected = {"lstm_seq2seq": None, "dot_attention": "dot", "additive_attention": "additive"}
    score = config["attention"] and config["attention"]["score"]
    assert score == expected[variant]
    assert config["special_tokens"] == {"pad": "<unk>", "unk": "<unk>", "bos": "\t",
                                        "eos": "\\n"}
    # the table's characters keep their ids; the unknown token is entry V on both sides
    for index, vocab in ((input_index, translator.source_vocab),
                         (target_index, translator.target_vocab)):
        assert [vocab.tokens[i] for i in range(len(index))] == \
            [c.replace("\n", "\\n") for c in sorted(index, key=index.get)]
        assert vocab.tokens[len(index)] == "<unk>"
    assert config["target"]["suppress_tokens"] == ["<unk>"]


@pytest.mark.parametrize("beam", [1, 5])
def test_engine_matches_keras(trained, beam):
    _, _, _, (input_index, target_index), translator, keras_model = trained
    bos, eos = target_index["\t"], target_index["\n"]

    def keras_search(source, beam_size):
        memory, initial = keras_model.encode(source)
        return beam_search(keras_model.step_function(memory), initial, bos, eos,
                           beam_size=beam_size, num_hypotheses=beam_size,
                           max_length=MAX_LENGTH)

    assert_engine_matches(translator._engine, _held_out(input_index), keras_search, beam,
                          MAX_LENGTH)


def test_keras_step_is_the_training_model(trained):
    """The inference oracle computes what the trained model computes (teacher forcing)."""
    _, _, _, (input_index, target_index), _, keras_model = trained
    source, target = "abcd", "\tdcba"
    full = keras.ops.convert_to_numpy(keras_model.m([
        one_hot(source, input_index)[None], one_hot(target, target_index)[None]]))[0]
    memory, state = keras_model.encode([input_index[c] for c in source])
    step, states = keras_model.step_function(memory), [state]
    for t, char in enumerate(target):
        log_probs, states, _ = step(states, [target_index[char]])
        np.testing.assert_allclose(np.exp(log_probs[0]), full[t], atol=1e-5)


def test_strings_and_one_hot_arrays(trained):
    """translate() on strings (characters) and translate_features() on the example's one-hot
    arrays decode as the ids do."""
    _, _, _, (input_index, _), translator, _ = trained
    text = "hgfab"
    ids = [input_index[c] for c in text]
    expected = translator._engine.translate([ids], beam_size=1, max_length=MAX_LENGTH)[0][0][0]
    chars = [translator.target_vocab.tokens[i] for i in expected]
    assert translator.translate([text], beam_size=1,
                                max_decoding_length=MAX_LENGTH) == ["".join(chars)]
    arrays = translator.translate_features([one_hot(text, input_index)], beam_size=1,
                                           max_decoding_length=MAX_LENGTH)
    assert arrays[0].hypotheses[0] == chars


def test_unknown_character_is_the_zero_vector(trained):
    """A character the table lacks: the converted model reads the all-zero vector (entry
    V), as Keras does when that row of the one-hot array is left empty."""
    _, _, _, (input_index, target_index), translator, keras_model = trained
    source = [input_index["a"], input_index["b"], len(input_index), input_index["c"]]
    x = np.zeros((1, len(source), len(input_index)), np.float32)
    for t, i in enumerate(source):
        if i < len(input_index):
            x[0, t, i] = 1.0
    memory, h, c = (keras.ops.convert_to_numpy(v)
                    for v in keras_model.m.get_layer("encoder")(x))
    oracle = beam_search(keras_model.step_function(memory), [h, c], target_index["\t"],
                         target_index["\n"], max_length=MAX_LENGTH)
    engine = translator._engine.translate([source], beam_size=1, max_length=MAX_LENGTH)[0]
    assert_same_results(engine, oracle)
    with pytest.warns(UserWarning):   # unknown tokens are reported
        text = translator.translate(["ab?c"], beam_size=1, max_decoding_length=MAX_LENGTH)
    assert text == ["".join(translator.target_vocab.tokens[i] for i in engine[0][0])]


def test_tables_as_lists_of_characters(trained):
    """The tables may also be given as JSON lists of the characters in id order."""
    variant, directory, path, (input_index, target_index), translator, _ = trained
    files = []
    for name, index in (("input_chars.json", input_index), ("target_chars.json", target_index)):
        files.append(str(directory / name))
        with open(files[-1], "w", encoding="utf-8") as f:
            json.dump(sorted(index, key=index.get), f)
    out = str(directory / "from-lists")
    convert_keras(path, out, *files, source_tokenizer="chars", target_tokenizer="chars")
    again = rnnsearch.Translator(out)
    assert again.source_vocab.tokens == translator.source_vocab.tokens
    assert again.target_vocab.tokens == translator.target_vocab.tokens


def test_inputs_padded_as_the_example_pads_them(trained):
    """The example's decode_sequence reads inputs padded with ' ' to the longest input:
    --pad-to-length N --pad-token ' ' reproduces Keras on those padded arrays."""
    variant, directory, path, (input_index, target_index), _, keras_model = trained
    src_json, tgt_json = write_tables(directory, input_index, target_index)
    out = str(directory / "padded")
    config = convert_keras(path, out, src_json, tgt_json, source_tokenizer="chars",
                           target_tokenizer="chars", pad_to_length=8, pad_token=" ")
    assert config["source"]["pad_to_length"] == 8 and config["special_tokens"]["pad"] == " "
    translator = rnnsearch.Translator(out)
    for text in ("abc", "hgfedc"):
        x = one_hot(text, input_index, 8)
        memory, state = keras_model.encode(list(x.argmax(axis=1)))
        oracle = beam_search(keras_model.step_function(memory), state, target_index["\t"],
                             target_index["\n"], beam_size=5, num_hypotheses=5,
                             max_length=MAX_LENGTH)
        engine = translator.translate_batch([list(text)], beam_size=5, num_hypotheses=5,
                                            max_decoding_length=MAX_LENGTH,
                                            return_scores=True)[0]
        eos = target_index["\n"]
        assert [list(h) for h in engine.hypotheses] == \
            [[translator.target_vocab.tokens[i] for i in h[0] if i != eos] for h in oracle]
        np.testing.assert_allclose(engine.scores, [h[1] for h in oracle], atol=1e-4)


# ---- refusals ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tables")
    input_index, target_index = _tables()
    src_json, tgt_json = write_tables(directory, input_index, target_index)
    return directory, os.path.join(FIXTURES, "dot_attention.keras"), src_json, tgt_json, \
        input_index, target_index


def _edited(path, out, edit):
    """A copy of a .keras file with its config.json edited."""
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with open(out, "wb") as f:
        f.write(buffer.getvalue())
    return out


def _input_layer(config, name):
    return next(layer for layer in config["config"]["layers"] if layer["name"] == name)


@pytest.mark.parametrize("field,value,message", [
    ("batch_shape", [None, None, 5], r"'encoder_inputs'.*one-hot vectors \[batch, length, "
                                     r"\d+\].*\[None, None, 5\]"),
    ("batch_shape", [None, 9], r"'encoder_inputs'.*one-hot vectors"),
    ("dtype", "int32", r"'encoder_inputs'.*int32 input without an Embedding"),
])
def test_malformed_one_hot_input(untrained, tmp_path, field, value, message):
    _, path, src_json, tgt_json, _, _ = untrained

    def edit(config):
        _input_layer(config, "encoder_inputs")["config"][field] = value
    bad = _edited(path, str(tmp_path / "bad.keras"), edit)
    with pytest.raises(rnnsearch.ModelError, match=message):
        convert_keras(bad, str(tmp_path / "m"), src_json, tgt_json)
    assert not os.path.exists(tmp_path / "m")


def test_tables_that_do_not_fit(untrained, tmp_path):
    _, path, src_json, tgt_json, input_index, _ = untrained
    big = str(tmp_path / "big.json")
    with open(big, "w") as f:
        json.dump({**input_index, "z": len(input_index)}, f)
    with pytest.raises(rnnsearch.ModelError, match=r"ids up to \d+ .*reads one-hot vectors"):
        convert_keras(path, str(tmp_path / "m"), big, tgt_json)
    with pytest.raises(rnnsearch.ModelError, match=r"--pad-token\) '#' is not in the source"):
        convert_keras(path, str(tmp_path / "m"), src_json, tgt_json, pad_token="#")
    with pytest.raises(rnnsearch.ModelError, match=r"--pad-to-length for a one-hot model "
                                                   r"needs --pad-token"):
        convert_keras(path, str(tmp_path / "m"), src_json, tgt_json, pad_to_length=8)


def test_one_hot_target_with_an_embedded_source_is_refused(untrained, tmp_path):
    _, _, src_json, tgt_json, input_index, target_index = untrained
    source = keras.Input(shape=(None,), dtype="int32", name="source")
    target = keras.Input(shape=(None, len(target_index)), name="target")
    x = L.Embedding(len(input_index), 8, name="src_emb")(source)
    _, h, c = L.LSTM(LATENT, return_state=True, name="encoder")(x)
    y = L.LSTM(LATENT, return_sequences=True, name="decoder")(target, initial_state=[h, c])
    model = keras.Model([source, target], L.Dense(len(target_index), activation="softmax")(y))
    path = str(tmp_path / "mixed.keras")
    model.save(path)
    with pytest.raises(rnnsearch.ModelError, match=r"decoder reads one-hot vectors but the "
                                                   r"encoder an Embedding 'src_emb'"):
        convert_keras(path, str(tmp_path / "m"), src_json, tgt_json)
