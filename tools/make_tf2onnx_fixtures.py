"""Train the Keras lstm_seq2seq example (and its attention variants) on TensorFlow, export
its inference models with tf2onnx, and write them to tests/fixtures/one_hot/tf2onnx/
(tests/fixtures/README.md, "One-hot models"):

  <variant>/encoder.onnx   the example's encoder_model (one-hot characters in; the memory
                           too for the attention variants), tf2onnx.convert.from_function
  <variant>/decoder.onnx   the example's decoder_model for one step: y [batch, 1, V_t],
                           h, c [batch, 24] (and the memory) in; probabilities
                           [batch, 1, V_t], h_out, c_out out
  <variant>/greedy.json    TensorFlow's own greedy decoding (the example's decode_sequence)
                           of a few inputs: target character ids and the sum of their
                           log-probabilities, end character included
  summary.json             versions, epochs, final losses, and which variants tf2onnx
                           exported

It needs TensorFlow and tf2onnx, which the test environment lacks, so it runs in a
virtualenv of its own (TensorFlow brings its own Keras 3; no torch needed):

    python -m venv /tmp/venv-tf && /tmp/venv-tf/bin/pip install tensorflow-cpu tf2onnx
    /tmp/venv-tf/bin/python tools/make_tf2onnx_fixtures.py

Same task, tables and training as tools/make_one_hot_fixtures.py's Keras models
(tests/one_hot_task.py: reverse 2-6 letters), on the TensorFlow backend.
"""
from __future__ import annotations

import json
import os
import pathlib
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"   # before keras is imported
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(HERE, "..", "tests")
OUT = pathlib.Path(TESTS, "fixtures", "one_hot", "tf2onnx")
sys.path.insert(0, TESTS)

from one_hot_keras import (KERAS_EPOCHS, KERAS_VARIANTS, LATENT,  # noqa: E402
                           train_keras_model)
from one_hot_task import one_hot, tables, texts, training_arrays  # noqa: E402

OPSET = 17
MAX_LENGTH = 12            # decode_sequence's max_decoder_seq_length here
GREEDY_INPUTS = ["ab", "hgf", "abcd", "cafe", "badge", "headed", "gg", "fed"]


def inference_models(model, variant):
    """The example's encoder_model and decoder_model, built from the trained layers."""
    import keras
    attention = variant != "lstm_seq2seq"
    encoder_inputs = model.get_layer("encoder_inputs").output
    memory, state_h, state_c = model.get_layer("encoder").output
    encoder_model = keras.Model(encoder_inputs,
                                [memory, state_h, state_c] if attention else [state_h, state_c])
    v_t = model.get_layer("decoder_inputs").output.shape[-1]
    y = keras.Input(shape=(1, v_t), name="y")
    h = keras.Input(shape=(LATENT,), name="h")
    c = keras.Input(shape=(LATENT,), name="c")
    inputs = [y, h, c]
    outputs, h_out, c_out = model.get_layer("decoder")(y, initial_state=[h, c])
    if attention:
        memory_input = keras.Input(shape=(None, LATENT), name="memory")
        inputs.append(memory_input)
        context = model.get_layer("attention")([outputs, memory_input])
        outputs = model.get_layer("concat")([outputs, context])
    probs = model.get_layer("dense")(outputs)
    return encoder_model, keras.Model(inputs, [probs, h_out, c_out])


def export(encoder_model, decoder_model, variant, v_s, v_t, directory):
    """Both models through tf2onnx, with named inputs and outputs (a dict of outputs names
    them in the graph)."""
    import tensorflow as tf
    import tf2onnx
    attention = variant != "lstm_seq2seq"
    enc_spec = (tf.TensorSpec((None, None, v_s), tf.float32, name="x"),)

    @tf.function(input_signature=enc_spec)
    def encode(x):
        out = encoder_model(x)
        names = ("memory", "h", "c") if attention else ("h", "c")
        return dict(zip(names, out))

    dec_spec = [tf.TensorSpec((None, 1, v_t), tf.float32, name="y"),
                tf.TensorSpec((None, LATENT), tf.float32, name="h"),
                tf.TensorSpec((None, LATENT), tf.float32, name="c")]
    if attention:
        dec_spec.append(tf.TensorSpec((None, None, LATENT), tf.float32, name="memory"))

    @tf.function(input_signature=dec_spec)
    def step(*inputs):
        probs, h, c = decoder_model(list(inputs))
        return {"probs": probs, "h_out": h, "c_out": c}

    tf2onnx.convert.from_function(encode, input_signature=enc_spec, opset=OPSET,
                                  output_path=str(directory / "encoder.onnx"))
    tf2onnx.convert.from_function(step, input_signature=dec_spec, opset=OPSET,
                                  output_path=str(directory / "decoder.onnx"))


def greedy(encoder_model, decoder_model, variant, text, input_index, target_index):
    """The example's decode_sequence (argmax until '\\n' or MAX_LENGTH characters), run by
    TensorFlow: (ids of the characters produced, end character included if produced; the
    sum of their log-probabilities)."""
    attention = variant != "lstm_seq2seq"
    states = encoder_model(one_hot(text, input_index)[None])
    states = [np.asarray(s) for s in states]
    memory, states = (states[0], states[1:]) if attention else (None, states)
    token, ids, total = target_index["\t"], [], 0.0
    for _ in range(MAX_LENGTH):
        y = np.zeros((1, 1, len(target_index)), np.float32)
        y[0, 0, token] = 1.0
        probs, h, c = decoder_model([y] + states + ([memory] if attention else []))
        probs = np.asarray(probs, dtype=np.float64)[0, -1]
        token = int(np.argmax(probs))
        ids.append(token)
        total += float(np.log(probs[token]))
        if token == target_index["\n"]:
            break
        states = [np.asarray(h), np.asarray(c)]
    return ids, total


def main() -> int:
    import keras
    import tensorflow as tf
    import tf2onnx
    input_texts, target_texts = texts(320)
    input_index, target_index = tables(input_texts, target_texts)
    arrays = training_arrays(input_texts, target_texts, input_index, target_index)
    summary = {"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__,
               "keras": keras.__version__, "opset": OPSET, "input_token_index": input_index,
               "target_token_index": target_index, "variants": {}}
    for number, variant in enumerate(KERAS_VARIANTS):
        model, loss = train_keras_model(variant, number, arrays, len(input_index),
                                        len(target_index))
        directory = OUT / variant
        directory.mkdir(parents=True, exist_ok=True)
        encoder_model, decoder_model = inference_models(model, variant)
        export(encoder_model, decoder_model, variant, len(input_index), len(target_index),
               directory)
        decodes = [dict(zip(("source", "ids", "log_prob"),
                            (text, *greedy(encoder_model, decoder_model, variant, text,
                                           input_index, target_index))))
                   for text in GREEDY_INPUTS]
        (directory / "greedy.json").write_text(json.dumps(decodes, indent=1) + "\n")
        summary["variants"][variant] = {"epochs": KERAS_EPOCHS, "samples": len(input_texts),
                                        "loss": loss}
        print(variant, summary["variants"][variant], flush=True)
    (OUT / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
