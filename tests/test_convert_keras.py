"""Keras converter: real Keras 3 models (torch backend) saved as .keras and legacy .h5,
converted, and decoded by the engine and by Keras itself, step by step through
oracle_search, greedy and beam 5. Keras' step is the tutorials' inference decoder: the
training model's own layers called on one target token at a time."""
import json
import os

import numpy as np
import pytest

from keras_on_torch import keras, one_torch_thread  # noqa: F401 (an autouse fixture)

import rnnsearch  # noqa: E402
from rnnsearch.cli import main as cli_main  # noqa: E402
from rnnsearch.convert.keras import convert_keras  # noqa: E402

from oracle_search import assert_same_results, beam_search  # noqa: E402

L = keras.layers
VS, VT, EMB = 23, 19, 8
BOS, EOS = 1, 2          # target ids of <start> and <end>
MAX_LENGTH = 12
NUM_SENTENCES = 10


# ----------------------------------------------------------------------------- models

def _rnn(cell, units, name, reset_after=True):
    options = dict(return_sequences=True, return_state=True, name=name)
    if cell == "lstm":
        return L.LSTM(units, **options)
    return L.GRU(units, reset_after=reset_after, **options)


def build(spec, seed=0):
    """A tutorial-style training model: Embedding -> (Bidirectional) LSTM/GRU encoder
    returning sequences and states; decoder LSTM/GRU started from those states; attention
    over the encoder outputs; Concatenate; optional Dense(tanh); Dense(softmax)."""
    hidden = spec.get("units", 10)
    bidirectional, merge = spec.get("bidirectional", False), spec.get("merge", "concat")
    hd = 2 * hidden if bidirectional and merge == "concat" else hidden
    hd = spec.get("dec_units", hd)   # a decoder narrower than the encoder (projections)
    enc_cell, dec_cell = spec.get("enc_cell", "lstm"), spec.get("dec_cell", "lstm")
    reset_after = spec.get("reset_after", True)
    source = keras.Input((spec.get("source_length"),), dtype="int32", name="source")
    target = keras.Input((None,), dtype="int32", name="target")
    x = L.Embedding(VS, EMB, mask_zero=spec.get("mask_zero", True), name="src_emb")(source)
    encoder_states = []
    for layer in range(spec.get("enc_layers", 1)):
        rnn = _rnn(enc_cell, hidden, f"enc{layer}" if not bidirectional else f"rnn{layer}",
                   reset_after)
        if bidirectional:
            rnn = L.Bidirectional(rnn, merge_mode=merge, name=f"enc{layer}")
        outputs = rnn(x)
        x = outputs[0]
        states = outputs[1:]
        dense = spec.get("bridge") == "dense"   # Dense(tanh) over [forward; backward]
        if bidirectional:
            half = len(states) // 2
            combine = L.Concatenate if merge == "concat" else L.Add
            states = [combine(name=f"{'bcat' if dense else 'bridge'}{layer}_{k}")([f, b])
                      for k, (f, b) in enumerate(zip(states[:half], states[half:]))]
        if dense:
            states = [L.Dense(spec["dec_units"], activation="tanh",
                              name=f"bridge{layer}_{k}")(s) for k, s in enumerate(states)]
        encoder_states.append(states)
    memory = x
    if spec.get("projection"):   # 2H-wide encoder outputs projected to the decoder's width
        hd = spec["dec_units"]
        dense = L.Dense(hd, name="proj") if spec["projection"] == "dense" else \
            L.TimeDistributed(L.Dense(hd), name="proj")
        memory = dense(memory)
    y = L.Embedding(VT, EMB, name="tgt_emb")(target)
    bridge = spec.get("bridge", "last")
    for layer in range(spec.get("dec_layers", 1)):
        initial = None if bridge == "zeros" else \
            encoder_states[layer if bridge in ("last", "dense") else -1]
        if initial is not None and dec_cell == "gru":
            initial = initial[:1]
        y = _rnn(dec_cell, hd, f"dec{layer}", reset_after)(y, initial_state=initial)[0]
    h = y
    if spec.get("attention"):
        kind, scale = spec["attention"]
        attention = L.AdditiveAttention(use_scale=scale, name="att") if kind == "additive" \
            else L.Attention(use_scale=scale, score_mode=kind, name="att")
        context = attention([y, memory])
        order = spec.get("order", "sc")
        parts = {"sc": [y, context], "cs": [context, y], "c": [context]}[order]
        h = L.Concatenate(name="cat")(parts) if len(parts) > 1 else parts[0]
    if spec.get("attentional"):
        dense = L.Dense(spec["attentional"], activation="tanh")
        h = (L.TimeDistributed(dense, name="attn_dense") if spec.get("td")
             else L.Dense(spec["attentional"], activation="tanh", name="attn_dense"))(h)
    output = spec.get("output", "softmax")
    if output == "td_softmax":
        h = L.TimeDistributed(L.Dense(VT, activation="softmax"), name="out")(h)
    elif output == "activation":
        h = L.Activation("softmax", name="softmax")(L.Dense(VT, name="out")(h))
    else:
        h = L.Dense(VT, activation="softmax", name="out")(h)
    model = keras.Model([source, target], h)
    _randomize(model, seed)
    return model


def _randomize(model, seed):
    """Random weights: hidden layers moderate (so the output depends on the source), the
    output layer large (peaked distributions, few near-ties in the search), and the end
    token's bias set so that hypotheses end at varied lengths."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        path, shape = variable.path, tuple(variable.shape)
        if shape == ():
            value = np.float32(rng.uniform(0.6, 1.6))
        elif "embeddings" in path:
            value = rng.uniform(-1, 1, shape)
        elif path.endswith("bias"):
            value = rng.uniform(-0.3, 0.3, shape)
        elif "att/" in path:
            value = rng.uniform(-1, 1, shape)
        elif path.startswith("out/"):
            value = rng.uniform(-OUT_SCALE, OUT_SCALE, shape) / np.sqrt(shape[0])
        else:
            value = rng.uniform(-HIDDEN_SCALE, HIDDEN_SCALE, shape) / np.sqrt(shape[0])
        if path.startswith("out/") and path.endswith("bias"):
            value[EOS] += EOS_BIAS
        variable.assign(np.asarray(value, np.float32))


HIDDEN_SCALE, OUT_SCALE, EOS_BIAS = 2.5, 25.0, -2.0


# ----------------------------------------------------------------------------- Keras' decoder

def _np(t):
    return keras.ops.convert_to_numpy(t)


class KerasDecoder:
    """Inference with the (reloaded) training model's layers, as the tutorials rebuild it:
    run the encoder once, then the decoder one token at a time carrying its states."""

    def __init__(self, model, spec):
        self.m, self.spec = model, spec

    def get(self, name):
        return self.m.get_layer(name)

    def encode(self, source_ids):
        spec = self.spec
        x = self.get("src_emb")(np.array([source_ids], np.int32))
        per_layer = []
        for layer in range(spec.get("enc_layers", 1)):
            outputs = self.get(f"enc{layer}")(x)
            x, states = outputs[0], list(outputs[1:])
            dense = spec.get("bridge") == "dense"
            if spec.get("bidirectional") and spec.get("bridge", "last") != "zeros":
                half = len(states) // 2
                states = [self.get(f"{'bcat' if dense else 'bridge'}{layer}_{k}")([f, b])
                          for k, (f, b) in enumerate(zip(states[:half], states[half:]))]
            if dense:
                states = [self.get(f"bridge{layer}_{k}")(s) for k, s in enumerate(states)]
            per_layer.append([_np(s) for s in states])
        hd = spec.get("units", 10) * (2 if spec.get("bidirectional") and
                                      spec.get("merge", "concat") == "concat" else 1)
        if spec.get("projection"):
            x, hd = self.get("proj")(x), spec["dec_units"]
        n_states = 2 if spec.get("dec_cell", "lstm") == "lstm" else 1
        initial = []
        for layer in range(spec.get("dec_layers", 1)):
            if spec.get("bridge", "last") == "zeros":
                initial.append([np.zeros((1, hd), np.float32)] * n_states)
            else:
                initial.append(per_layer[layer if spec.get("bridge", "last") in
                                         ("last", "dense") else -1][:n_states])
        return _np(x), initial

    def step_function(self, memory):
        spec = self.spec

        def step(states, tokens):
            n = len(tokens)
            y = self.get("tgt_emb")(np.array(tokens, np.int32)[:, None])
            new_states = []
            for layer in range(spec.get("dec_layers", 1)):
                initial = [np.concatenate([s[layer][k] for s in states])
                           for k in range(len(states[0][layer]))]
                outputs = self.get(f"dec{layer}")(y, initial_state=initial)
                y = outputs[0]
                new_states.append([_np(o) for o in outputs[1:]])
            h = y
            if spec.get("attention"):
                context = self.get("att")([y, np.repeat(memory, n, axis=0)])
                order = spec.get("order", "sc")
                parts = {"sc": [y, context], "cs": [context, y], "c": [context]}[order]
                h = self.get("cat")(parts) if len(parts) > 1 else parts[0]
            if spec.get("attentional"):
                h = self.get("attn_dense")(h)
            h = self.get("out")(h)
            if spec.get("output") == "activation":
                h = self.get("softmax")(h)
            probs = _np(h)[:, 0, :].astype(np.float64)
            log_probs = np.log(probs)
            per_hyp = [[[s[i:i + 1] for s in layer] for layer in new_states] for i in range(n)]
            return log_probs, per_hyp, None

        return step


# ----------------------------------------------------------------------------- vocabularies

def _tokenizer_json(words, oov=None, lower=True, char_level=False):
    """What keras.preprocessing.text.Tokenizer.to_json() writes (ids from 1)."""
    word_index = {w: i + 1 for i, w in enumerate(words)}
    config = {"num_words": None, "filters": "", "lower": lower, "split": " ",
              "char_level": char_level, "oov_token": oov, "document_count": 3,
              "word_counts": json.dumps({w: 1 for w in words}),
              "word_docs": json.dumps({w: 1 for w in words}),
              "index_docs": json.dumps({str(i): 1 for i in word_index.values()}),
              "index_word": json.dumps({str(i): w for w, i in word_index.items()}),
              "word_index": json.dumps(word_index)}
    return json.dumps({"class_name": "Tokenizer", "config": config})


def write_vocabularies(directory, kind="tokenizer"):
    source_words = ["<unk>"] + [f"w{i}" for i in range(2, VS)]
    target_words = ["<start>", "<end>"] + [f"t{i}" for i in range(3, VT)]
    src, tgt = os.path.join(directory, "src.json"), os.path.join(directory, "tgt.json")
    if kind == "tokenizer":
        with open(src, "w") as f:
            f.write(_tokenizer_json(source_words, oov="<unk>"))
        with open(tgt, "w") as f:
            f.write(_tokenizer_json(target_words))
    else:   # a text file for the source (line 0 empty = padding), word_index JSON for the target
        src = os.path.join(directory, "src.txt")
        with open(src, "w") as f:
            f.write("\n".join([""] + source_words) + "\n")
        with open(tgt, "w") as f:
            json.dump({w: i + 1 for i, w in enumerate(target_words)}, f)
    return src, tgt


def _sources(n=NUM_SENTENCES, seed=0, low=1):
    rng = np.random.default_rng(seed)
    return [[int(t) for t in rng.integers(low, VS, rng.integers(2, 10))] for _ in range(n)]


# ----------------------------------------------------------------------------- comparisons

SPECS = {
    # the TF "NMT with attention" shape: BiLSTM encoder, concatenated states, scaled dot
    # attention, [s; c], TimeDistributed(Dense(tanh)), Dense(softmax)
    "bilstm_dot_scaled_sc_attentional_td": dict(
        bidirectional=True, attention=("dot", True), order="sc", attentional=14, td=True,
        file="keras"),
    "gru_reset_after_dot_cs_td_output": dict(
        enc_cell="gru", dec_cell="gru", attention=("dot", False), order="cs",
        output="td_softmax", file="h5"),
    "bigru_no_reset_after_sum_additive_scaled": dict(
        enc_cell="gru", dec_cell="gru", reset_after=False, bidirectional=True, merge="sum",
        attention=("additive", True), order="sc", file="keras", vocab="files"),
    "lstm_additive_unscaled_cs_zeros_bridge_logits": dict(
        attention=("additive", False), order="cs", bridge="zeros", output="activation",
        file="h5"),
    "lstm_concat_unscaled_sc": dict(attention=("concat", False), order="sc", file="keras"),
    "gru_two_layers_concat_scaled_cs_attentional": dict(
        enc_cell="gru", dec_cell="gru", enc_layers=2, dec_layers=2, attention=("concat", True),
        order="cs", attentional=12, file="h5"),
    "lstm_two_layer_encoder_top_bridge_context_only": dict(
        enc_layers=2, bridge="top", attention=("dot", True), order="c", file="keras"),
    "lstm_no_attention": dict(file="keras"),
    # a 2H-wide BiLSTM meeting an H-wide decoder through a projection of its outputs: the
    # projection folds into the keys (general / additive with a key layer) and the context
    "bilstm_dense_projection_dot_scaled_attentional": dict(
        bidirectional=True, projection="dense", dec_units=10, bridge="zeros",
        attention=("dot", True), order="sc", attentional=12, file="keras"),
    "bigru_td_projection_additive_scaled_cs": dict(
        enc_cell="gru", dec_cell="gru", bidirectional=True, projection="td", dec_units=10,
        bridge="zeros", attention=("additive", True), order="cs", file="keras"),
    "bilstm_dense_projection_concat_scaled_context_only": dict(
        bidirectional=True, projection="dense", dec_units=10, bridge="zeros",
        attention=("concat", True), order="c", file="h5"),
    "bilstm_td_projection_concat_unscaled_sc": dict(
        bidirectional=True, projection="td", dec_units=10, bridge="zeros",
        attention=("concat", False), order="sc", file="keras"),
    # ... and its decoder started from Dense(tanh) over the concatenated final states
    "bilstm_dense_projection_dense_bridge_additive": dict(
        bidirectional=True, projection="dense", dec_units=10, bridge="dense",
        attention=("additive", True), order="sc", attentional=12, file="keras"),
    "bigru_dense_bridge_no_attention": dict(
        enc_cell="gru", dec_cell="gru", bidirectional=True, dec_units=10, bridge="dense",
        file="keras"),
}


def _save(model, directory, kind):
    path = os.path.join(directory, "model.keras" if kind == "keras" else "model.h5")
    model.save(path)
    return path


@pytest.mark.parametrize("name", list(SPECS))
def test_engine_matches_keras(name, tmp_path):
    spec = SPECS[name]
    model = build(spec, seed=len(name))
    model_path = _save(model, str(tmp_path), spec["file"])
    src_vocab, tgt_vocab = write_vocabularies(str(tmp_path), spec.get("vocab", "tokenizer"))
    out = str(tmp_path / "converted")
    assert cli_main(["convert", "--from", "keras", model_path, "-o", out,
                     "--source-vocab", src_vocab, "--target-vocab", tgt_vocab]) == 0
    translator = rnnsearch.Translator(out)
    assert translator.target_vocab.tokens[BOS] == "<start>"
    assert translator.target_vocab.tokens[EOS] == "<end>"

    # Keras 3 cannot load back its own legacy .h5 of a mask_zero model (it lacks the
    # NotEqual mask op); there Keras decodes with the in-memory model the file was saved from
    reloaded = keras.models.load_model(model_path, compile=False) \
        if spec["file"] == "keras" else model
    keras_decoder = KerasDecoder(reloaded, spec)
    sources = _sources(seed=len(name))
    if name == "bilstm_dot_scaled_sc_attentional_td":   # the stepper is the teacher-forced model
        memory, initial = keras_decoder.encode(sources[0])
        prefix = [BOS, 5, 7, 3]
        full = _np(reloaded([np.array([sources[0]]), np.array([prefix])]))[0]
        state, step = [initial], keras_decoder.step_function(memory)
        for t, token in enumerate(prefix):
            log_probs, state, _ = step(state, [token])
            np.testing.assert_allclose(np.exp(log_probs[0]), full[t], atol=1e-5)
    for beam in (1, 5):
        results = translator._engine.translate(sources, beam_size=beam, num_hypotheses=beam,
                                               max_length=MAX_LENGTH)
        for source, engine in zip(sources, results):
            memory, initial = keras_decoder.encode(source)
            oracle = beam_search(keras_decoder.step_function(memory), initial, BOS, EOS,
                                 beam_size=beam, num_hypotheses=beam, max_length=MAX_LENGTH)
            assert_same_results(engine, oracle)


def test_config_and_string_api(tmp_path):
    """The mapping the converter chose, and translate() on strings (lower-casing from the
    Tokenizer, the source start/end tokens, whitespace tokens) against ids."""
    spec = SPECS["bilstm_dot_scaled_sc_attentional_td"]
    model_path = _save(build(spec), str(tmp_path), "keras")
    src_vocab, tgt_vocab = write_vocabularies(str(tmp_path))
    out = str(tmp_path / "m")
    config = convert_keras(model_path, out, src_vocab, tgt_vocab)
    assert config["encoder"]["bidirectional"] and config["encoder"]["merge"] == "concat"
    assert config["bridge"]["type"] == "last" and config["bridge"]["lstm_cell"] == "bridged"
    assert config["attention"]["score"] == "dot"
    assert config["decoder"]["type"] == "luong" and config["decoder"]["attentional_size"] == 14
    assert config["source"]["lowercase"] is True
    assert config["special_tokens"] == {"pad": "<pad>", "unk": "<unk>", "bos": "<start>",
                                        "eos": "<end>"}
    translator = rnnsearch.Translator(out)
    text = translator.translate(["W3 w7 zzz w4"], beam_size=2, max_decoding_length=20)[0]
    ids = [3, 7, 1, 4]    # zzz is unknown: the Tokenizer's <unk> (id 1)
    expected = translator._engine.translate([ids], beam_size=2, max_length=20)[0][0][0]
    assert text == " ".join(translator.target_vocab.tokens[i] for i in expected)


@pytest.mark.parametrize("side", ["post", "pre"])
def test_padded_model_without_mask(tmp_path, side):
    """mask_zero=False: the model reads the padding. The converter records
    source.pad_to_length, and the Translator pads every source to it, so translating the
    unpadded tokens reproduces Keras on the padded ids."""
    spec = dict(mask_zero=False, source_length=10, enc_cell="gru", dec_cell="gru",
                attention=("dot", False), order="sc", bidirectional=True)
    model = build(spec, seed=3)
    model_path = _save(model, str(tmp_path), "keras")
    src_vocab, tgt_vocab = write_vocabularies(str(tmp_path))
    out = str(tmp_path / "m")
    config = convert_keras(model_path, out, src_vocab, tgt_vocab, source_padding=side)
    assert config["source"]["pad_to_length"] == 10 and config["source"]["padding"] == side
    translator = rnnsearch.Translator(out)
    keras_decoder = KerasDecoder(model, spec)
    sources = _sources(seed=4)
    pad = lambda s: s + [0] * (10 - len(s)) if side == "post" else [0] * (10 - len(s)) + s  # noqa: E731
    for beam in (1, 5):
        results = translator.translate_batch(
            [[translator.source_vocab.tokens[i] for i in s] for s in sources],
            beam_size=beam, num_hypotheses=beam, max_decoding_length=MAX_LENGTH,
            return_scores=True)
        for source, result in zip(sources, results):
            memory, initial = keras_decoder.encode(pad(source))
            oracle = beam_search(keras_decoder.step_function(memory), initial, BOS, EOS,
                                 beam_size=beam, num_hypotheses=beam, max_length=MAX_LENGTH)
            assert [[translator.target_vocab.tokens[i] for i in tokens]
                    for tokens, _, _ in oracle] == result.hypotheses
            np.testing.assert_allclose(result.scores, [score for _, score, _ in oracle],
                                       atol=1e-4)
    with pytest.raises(ValueError, match="longer than the model allows"):
        translator.translate_batch([["w1"] * 11])
    # --ignore-padding converts without padding (and says the results will differ)
    with pytest.warns(UserWarning, match="mask_zero=False"):
        config = convert_keras(model_path, out, src_vocab, tgt_vocab, ignore_padding=True)
    assert rnnsearch.Translator(out).config["source"]["pad_to_length"] is None


# ----------------------------------------------------------------------------- refusals

def _small_model(middle):
    source = keras.Input((None,), dtype="int32", name="source")
    target = keras.Input((None,), dtype="int32", name="target")
    x = L.Embedding(VS, EMB, mask_zero=True, name="src_emb")(source)
    x = middle(x)
    memory, h, c = L.LSTM(8, return_sequences=True, return_state=True, name="enc")(x)
    y = L.Embedding(VT, EMB, name="tgt_emb")(target)
    y = L.LSTM(8, return_sequences=True, name="dec")(y, initial_state=[h, c])
    context = L.Attention(name="att")([y, memory])
    out = L.Dense(VT, activation="softmax", name="out")(L.Concatenate()([y, context]))
    return keras.Model([source, target], out)


@pytest.mark.parametrize("layer,cls", [
    (lambda: L.Conv1D(EMB, 3, padding="same", name="conv"), "Conv1D"),
    (lambda: L.LayerNormalization(name="norm"), "LayerNormalization")])
def test_unsupported_layer_is_named(tmp_path, layer, cls):
    model_path = _save(_small_model(layer()), str(tmp_path), "keras")
    src_vocab, tgt_vocab = write_vocabularies(str(tmp_path))
    with pytest.raises(rnnsearch.ModelError, match=rf"'(conv|norm)' \({cls}\)"):
        convert_keras(model_path, str(tmp_path / "m"), src_vocab, tgt_vocab)


def test_multi_head_attention_is_refused(tmp_path):
    source = keras.Input((None,), dtype="int32")
    target = keras.Input((None,), dtype="int32")
    memory = L.LSTM(8, return_sequences=True)(L.Embedding(VS, EMB)(source))
    y = L.LSTM(8, return_sequences=True)(L.Embedding(VT, EMB)(target))
    context = L.MultiHeadAttention(2, 4, name="mha")(y, memory)
    out = L.Dense(VT, activation="softmax")(L.Concatenate()([y, context]))
    model_path = _save(keras.Model([source, target], out), str(tmp_path), "h5")
    src_vocab, tgt_vocab = write_vocabularies(str(tmp_path))
    with pytest.raises(rnnsearch.ModelError, match=r"'mha' \(MultiHeadAttention\)"):
        convert_keras(model_path, str(tmp_path / "m"), src_vocab, tgt_vocab)


def test_mismatched_vocabularies(tmp_path):
    model_path = _save(_small_model(lambda x: x), str(tmp_path), "keras")
    src_vocab, tgt_vocab = write_vocabularies(str(tmp_path))
    big = os.path.join(str(tmp_path), "big.json")
    with open(big, "w") as f:
        f.write(_tokenizer_json(["<unk>"] + [f"w{i}" for i in range(2, VS + 5)], oov="<unk>"))
    with pytest.raises(rnnsearch.ModelError, match=r"input_dim 23"):
        convert_keras(model_path, str(tmp_path / "m"), big, tgt_vocab)
    # the decoder's Embedding and the output layer disagree on the target vocabulary
    source = keras.Input((None,), dtype="int32")
    target = keras.Input((None,), dtype="int32")
    memory, h, c = L.LSTM(8, return_sequences=True, return_state=True)(
        L.Embedding(VS, EMB)(source))
    y = L.LSTM(8, return_sequences=True)(L.Embedding(VT, EMB, name="tgt_emb")(target),
                                         initial_state=[h, c])
    out = L.Dense(VT + 1, activation="softmax", name="out")(y)
    other = _save(keras.Model([source, target], out), str(tmp_path / ".."), "h5")
    with pytest.raises(rnnsearch.ModelError, match=r"'tgt_emb' has input_dim 19 but the "
                                                   r"output layer 'out' has 20"):
        convert_keras(other, str(tmp_path / "m2"), src_vocab, tgt_vocab)


def test_inference_model_is_refused(tmp_path):
    """Given an inference decoder (state inputs) instead of the training model."""
    target = keras.Input((None,), dtype="int32")
    h_in, c_in = keras.Input((8,)), keras.Input((8,))
    y, h, c = L.LSTM(8, return_sequences=True, return_state=True)(
        L.Embedding(VT, EMB)(target), initial_state=[h_in, c_in])
    model = keras.Model([target, h_in, c_in], [L.Dense(VT, activation="softmax")(y), h, c])
    model_path = _save(model, str(tmp_path), "keras")
    src_vocab, tgt_vocab = write_vocabularies(str(tmp_path))
    with pytest.raises(rnnsearch.ModelError, match="TRAINING model"):
        convert_keras(model_path, str(tmp_path / "m"), src_vocab, tgt_vocab)


def _as_keras2_file(path, out):
    """Rewrite a Keras 3 legacy .h5 the way Keras 2 (tf.keras) writes it: inbound nodes as
    [[layer, node, index, kwargs], ...] with an RNN's initial states after its input, and
    weight names ending in ':0'."""
    import shutil

    import h5py
    shutil.copy(path, out)
    with h5py.File(out, "r+") as f:
        top = json.loads(f.attrs["model_config"])
        top["class_name"] = "Functional"

        def tensors(obj, found):
            if isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__":
                found.append(obj["config"]["keras_history"])
            elif isinstance(obj, (list, tuple)):
                for item in obj:
                    tensors(item, found)
            return found

        for layer in top["config"]["layers"]:
            layer.pop("module", None)
            layer.pop("registered_name", None)
            nodes = []
            for node in layer["inbound_nodes"]:
                found = tensors(node["args"], [])
                found += tensors(node["kwargs"].get("initial_state", []), [])
                nodes.append([[name, n, i, {}] for name, n, i in found])
            layer["inbound_nodes"] = nodes
        f.attrs["model_config"] = json.dumps(top)
        weights = f["model_weights"]
        for name in weights:
            group = weights[name]
            names = [n.decode() if isinstance(n, bytes) else n
                     for n in group.attrs.get("weight_names", [])]
            for n in names:
                group.move(n, n + ":0")
            if names:
                group.attrs["weight_names"] = [n + ":0" for n in names]


def test_keras2_legacy_h5(tmp_path):
    """A tf.keras-style legacy file converts to exactly what the Keras 3 file gives."""
    spec = SPECS["bilstm_dot_scaled_sc_attentional_td"]
    keras3 = _save(build(spec), str(tmp_path), "h5")
    keras2 = str(tmp_path / "keras2.h5")
    _as_keras2_file(keras3, keras2)
    src_vocab, tgt_vocab = write_vocabularies(str(tmp_path))
    a = convert_keras(keras3, str(tmp_path / "a"), src_vocab, tgt_vocab)
    b = convert_keras(keras2, str(tmp_path / "b"), src_vocab, tgt_vocab)
    assert a == b
    _assert_same_tensors(str(tmp_path / "a"), str(tmp_path / "b"))
    # Keras 2 save_weights("w.h5") (the model_weights layout at the root) + to_json()
    import h5py
    weights, config = str(tmp_path / "w.h5"), str(tmp_path / "m.json")
    with h5py.File(keras2, "r") as f, h5py.File(weights, "w") as w:
        with open(config, "w") as out:
            out.write(f.attrs["model_config"])
        for key, value in f["model_weights"].attrs.items():
            w.attrs[key] = value
        for name in f["model_weights"]:
            f.copy(f["model_weights"][name], w, name=name)
    convert_keras(weights, str(tmp_path / "c"), src_vocab, tgt_vocab, keras_config=config)
    _assert_same_tensors(str(tmp_path / "a"), str(tmp_path / "c"))


def _assert_same_tensors(a, b):
    from rnnsearch.safetensors_io import read_safetensors
    ta, _ = read_safetensors(os.path.join(a, "model.safetensors"))
    tb, _ = read_safetensors(os.path.join(b, "model.safetensors"))
    assert sorted(ta) == sorted(tb)
    for name in ta:
        np.testing.assert_array_equal(ta[name], tb[name])


def test_weights_file_with_json_config(tmp_path):
    """model.save_weights("x.weights.h5") plus model.to_json(); also a weights file without
    the layer-name attributes (older Keras 3), found by Keras' class-name paths."""
    import h5py
    spec = SPECS["gru_two_layers_concat_scaled_cs_attentional"]
    model = build(spec)
    archive = _save(model, str(tmp_path), "keras")
    weights, config = str(tmp_path / "m.weights.h5"), str(tmp_path / "m.json")
    model.save_weights(weights)
    with open(config, "w") as f:
        f.write(model.to_json())
    src_vocab, tgt_vocab = write_vocabularies(str(tmp_path))
    convert_keras(archive, str(tmp_path / "a"), src_vocab, tgt_vocab)
    cli_main(["convert", "--from", "keras", weights, "--keras-config", config, "-o",
              str(tmp_path / "b"), "--source-vocab", src_vocab, "--target-vocab", tgt_vocab])
    _assert_same_tensors(str(tmp_path / "a"), str(tmp_path / "b"))
    with h5py.File(weights, "r+") as f:
        named = []
        f.visititems(lambda name, obj: named.append(obj) if "name" in obj.attrs else None)
        for obj in named:
            del obj.attrs["name"]
    convert_keras(weights, str(tmp_path / "c"), src_vocab, tgt_vocab, keras_config=config)
    _assert_same_tensors(str(tmp_path / "a"), str(tmp_path / "c"))


def test_char_level_vocabularies(tmp_path):
    """Character Tokenizers (char_level=True, lower=True, no OOV token) with the Keras
    char-seq2seq markers: start "\\t", end "\\n" (renamed: a vocabulary line cannot hold a
    newline). Unknown characters read as padding, the Tokenizer's ids are kept."""
    model_path = _save(_small_model(lambda x: x), str(tmp_path), "keras")
    source_chars = list(" abcdefghijklmnopqrstu")          # ids 1..22
    target_chars = ["\t", "\n"] + list("vwxyz.!?0123456")    # ids 1..17 of 19
    src, tgt = str(tmp_path / "src.json"), str(tmp_path / "tgt.json")
    with open(src, "w") as f:
        f.write(_tokenizer_json(source_chars, char_level=True))
    with open(tgt, "w") as f:
        f.write(_tokenizer_json(target_chars, char_level=True))
    out = str(tmp_path / "m")
    with pytest.warns(UserWarning, match="1 of the 19 target ids"):
        config = convert_keras(model_path, out, src, tgt)
    assert config["source"]["tokenizer"] == "chars" and config["source"]["lowercase"]
    assert config["target"]["tokenizer"] == "chars"
    assert config["special_tokens"] == {"pad": "<pad>", "unk": "<pad>", "bos": "\t",
                                        "eos": "\\n"}
    # the same markers typed in a shell: --bos '\t' --eos '\n'
    with pytest.warns(UserWarning):
        assert cli_main(["convert", "--from", "keras", model_path, "-o", out + "2",
                         "--source-vocab", src, "--target-vocab", tgt,
                         "--bos", "\\t", "--eos", "\\n"]) == 0
    assert rnnsearch.Translator(out + "2").config == rnnsearch.Translator(out).config
    translator = rnnsearch.Translator(out)
    assert translator.source_vocab.tokens[:3] == ["<pad>", " ", "a"]
    assert translator.target_vocab.tokens[-1] == "<unused_18>"
    text = translator.translate(["Ab C#"], beam_size=3, max_decoding_length=8)[0]
    ids = [2, 3, 1, 4, 0]     # '#' is unknown: padding (id 0)
    best = translator._engine.translate([ids], beam_size=3, max_length=8)[0][0][0]
    assert text == "".join(translator.target_vocab.tokens[i] for i in best)


def test_plain_vocabulary_formats(tmp_path):
    from rnnsearch.convert.keras.vocab import load_vocabulary
    path = tmp_path / "v.txt"
    path.write_text("\n[UNK]\nhello\n world\n")             # TextVectorization.get_vocabulary()
    info = load_vocabulary(str(path))
    assert info.tokens == {1: "[UNK]", 2: "hello", 3: " world"} and info.oov == "[UNK]"
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"1": "a", "2": "b"}))        # index_word
    assert load_vocabulary(str(path)).tokens == {1: "a", 2: "b"}
    path.write_text(json.dumps({"a": 1, "b": 1}))
    with pytest.raises(rnnsearch.ModelError, match="share id 1"):
        load_vocabulary(str(path))


def _fitted_tokenizer(words, **options):
    """Keras' own Tokenizer, fitted so that ids follow `words` (most frequent first)."""
    from keras.src.legacy.preprocessing.text import Tokenizer
    tokenizer = Tokenizer(filters="", **options)
    tokenizer.fit_on_texts([" ".join(words[:k]) for k in range(len(words), 0, -1)])
    return tokenizer


def test_pickled_keras_tokenizers(tmp_path):
    """pickle.dump(tokenizer, f) vocabularies are read without Keras (a restricted
    unpickler) and give exactly what the same Tokenizer's to_json() gives."""
    import pickle
    source = _fitted_tokenizer([f"w{i}" for i in range(2, VS)], oov_token="<unk>")
    target = _fitted_tokenizer(["<start>", "<end>"] + [f"t{i}" for i in range(3, VT)])
    for name, tokenizer in (("src", source), ("tgt", target)):
        with open(tmp_path / f"{name}.pkl", "wb") as f:
            pickle.dump(tokenizer, f)
        (tmp_path / f"{name}.json").write_text(tokenizer.to_json(), encoding="utf-8")
    model_path = _save(build(SPECS["lstm_no_attention"]), str(tmp_path), "keras")
    configs = {}
    for kind in ("pkl", "json"):
        out = str(tmp_path / kind)
        configs[kind] = convert_keras(model_path, out, str(tmp_path / f"src.{kind}"),
                                      str(tmp_path / f"tgt.{kind}"))
        configs[kind]["vocabularies"] = [open(os.path.join(out, f"{side}_vocabulary.txt")).read()
                                         for side in ("source", "target")]
    assert configs["pkl"] == configs["json"]
    assert configs["pkl"]["special_tokens"]["unk"] == "<unk>"
    assert "w2" in configs["pkl"]["vocabularies"][0].split("\n")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(rnnsearch.ModelError, match="only a Keras Tokenizer is read"):
        convert_keras(model_path, str(tmp_path / "x"), str(evil), str(tmp_path / "tgt.pkl"))
    empty = tmp_path / "empty.pkl"
    from keras.src.legacy.preprocessing.text import Tokenizer
    empty.write_bytes(pickle.dumps(Tokenizer()))
    with pytest.raises(rnnsearch.ModelError, match="no word_index"):
        convert_keras(model_path, str(tmp_path / "x"), str(empty), str(tmp_path / "tgt.pkl"))
    assert not os.path.exists(tmp_path / "x")


def test_a_bare_vocabulary_makes_a_guessed_tokenizer(tmp_path, capsys):
    """A token list says nothing about how text was split: the converter says so, and
    rnnsearch inspect shows it; a Tokenizer's settings, or --source-tokenizer, are not
    guesses."""
    model_path = _save(build(SPECS["lstm_no_attention"]), str(tmp_path), "keras")
    src_vocab, tgt_vocab = write_vocabularies(str(tmp_path), "files")
    with pytest.warns(UserWarning, match="source tokenization is a guess"):
        config = convert_keras(model_path, str(tmp_path / "m"), src_vocab, tgt_vocab,
                               target_tokenizer="whitespace")
    assert config["source"]["tokenizer_guessed"] is True
    assert "tokenizer_guessed" not in config["target"]
    capsys.readouterr()
    assert cli_main(["inspect", str(tmp_path / "m")]) == 0
    shown = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("tokenizer:")]
    assert shown == ["tokenizer:  source whitespace [GUESSED by the converter: the export did "
                     "not record it; check it]; target whitespace"]
