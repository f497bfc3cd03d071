"""Train the small one-hot models the converter tests decode, and write them to
tests/fixtures/one_hot/ (tests/fixtures/README.md, "One-hot models"):

  keras/<variant>.keras        the Keras lstm_seq2seq example (variant lstm_seq2seq) and
                               its Attention / AdditiveAttention variants (dot_attention,
                               additive_attention), Keras 3 on the torch backend, trained
                               with the example's rmsprop (learning rate 0.01) and
                               categorical cross-entropy
  keras/input_token_index.json, keras/target_token_index.json
                               the example's character tables (json.dump of the dicts)
  onnx/<case>/{encoder,decoder}.onnx
                               PyTorch counterparts (an nn.LSTM over one-hot inputs, a
                               decoder step fed one-hot tokens; with dot attention, without,
                               through a bias-free Linear first, or exported by dynamo),
                               trained with Adam and exported with torch.onnx.export
  one_hot.json                 sizes, training steps, final losses

All learn the character task of tests/one_hot_task.py (reverse 2-6 letters).

    python tools/make_one_hot_fixtures.py        # a few minutes on two busy cores
"""
from __future__ import annotations

import json
import os
import pathlib
import sys

os.environ["KERAS_BACKEND"] = "torch"   # before keras is imported

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(HERE, "..", "tests")
OUT = pathlib.Path(TESTS, "fixtures", "one_hot")
sys.path.insert(0, TESTS)

from one_hot_keras import KERAS_EPOCHS, KERAS_VARIANTS, train_keras_model  # noqa: E402
from one_hot_models import (BOS, EOS, SRC, TGT, OneHotEncoder, OneHotStep,  # noqa: E402
                            export_onnx)
from one_hot_task import tables, texts, training_arrays, write_tables  # noqa: E402

TORCH_STEPS = 150
ONNX_CASES = {"attention": dict(attention=True), "no_attention": dict(attention=False),
              "projected": dict(attention=True, project=True),
              "attention_dynamo": dict(attention=True, dynamo=True)}


def make_keras(summary: dict) -> None:
    directory = OUT / "keras"
    directory.mkdir(parents=True, exist_ok=True)
    input_texts, target_texts = texts(320)
    input_index, target_index = tables(input_texts, target_texts)
    write_tables(directory, input_index, target_index)
    arrays = training_arrays(input_texts, target_texts, input_index, target_index)
    for number, variant in enumerate(KERAS_VARIANTS):
        model, loss = train_keras_model(variant, number, arrays, len(input_index),
                                        len(target_index))
        model.save(str(directory / f"{variant}.keras"))
        summary["keras"][variant] = {"epochs": KERAS_EPOCHS, "samples": len(input_texts),
                                     "loss": loss}
        print(variant, summary["keras"][variant], flush=True)


def train(encoder, step, seed=0):
    """Teacher-forced Adam on the reversal task ('<s>'/'</s>' for the example's
    '\\t'/'\\n'); returns the last loss."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    params = list(encoder.parameters()) + list(step.parameters())
    optimizer = torch.optim.Adam(params, lr=0.02)
    src_eye, tgt_eye = torch.eye(len(SRC)), torch.eye(len(TGT))
    for _ in range(TORCH_STEPS):
        length = int(rng.integers(2, 7))
        ids = rng.integers(1, len(SRC), (32, length))                  # letters, no ' '
        targets = np.concatenate([ids[:, ::-1] + 2, np.full((32, 1), EOS)], 1)  # TGT ids
        previous = np.concatenate([np.full((32, 1), BOS), targets[:, :-1]], 1)
        memory, h, c = encoder(src_eye[torch.tensor(ids)])
        loss = 0.0
        for t in range(targets.shape[1]):
            args = (tgt_eye[torch.tensor(previous[:, t])], h, c) + \
                ((memory,) if step.attention else ())
            log_probs, h, c, *_ = step(*args)
            loss = loss - log_probs[torch.arange(32), torch.tensor(targets[:, t])].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    encoder.eval()
    step.eval()
    return float(loss) / targets.shape[1]


def make_onnx(summary: dict) -> None:
    for number, (case, options) in enumerate(ONNX_CASES.items()):
        directory = OUT / "onnx" / case
        directory.mkdir(parents=True, exist_ok=True)
        encoder = OneHotEncoder(options.get("project", False))
        step = OneHotStep(options["attention"])
        loss = train(encoder, step, seed=number)
        export_onnx(encoder, step, directory, dynamo=options.get("dynamo", False))
        summary["onnx"][case] = {"steps": TORCH_STEPS, "loss": loss}
        print(case, summary["onnx"][case], flush=True)


def main() -> None:
    torch.set_num_threads(1)   # tiny models: extra threads only add contention
    summary = {"keras": {}, "onnx": {}}
    make_onnx(summary)
    make_keras(summary)
    with open(OUT / "one_hot.json", "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
