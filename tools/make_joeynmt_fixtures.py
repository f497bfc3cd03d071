"""Build the JoeyNMT converter fixtures in tests/fixtures/joeynmt/ with real JoeyNMT.

Each fixture is a tiny recurrent model trained for a few epochs on a toy task (reverse a
sequence of letters and upper-case it) by `python -m joeynmt train`; the fixture keeps the
model directory's config.yaml, src_vocab.txt, trg_vocab.txt and the checkpoint as
best.ckpt (optimizer, scheduler and data-iterator state dropped to keep it small; JoeyNMT
reads only model_state when testing). Then JoeyNMT itself translates ten sentences:
  greedy       `joeynmt test` (joeynmt.prediction.test) with beam_size 1, return_prob hyp
  beam         the same with beam_size 5, n_best 5, beam_alpha 0
  oracle_beam  JoeyNMT's own model (model(return_type="encode"/"decode"), one step at a
               time) driven by tests/oracle_search.py, the spec's beam search (K = N = 5,
               min_length 1 like JoeyNMT's default min_output_length)
All runs use max_output_length 30.

JoeyNMT pins its own torch; install it only into a throwaway virtualenv that reuses the
installed torch (see tests/fixtures/README.md):
  python -m venv --system-site-packages /tmp/fw-venv
  /tmp/fw-venv/bin/pip install --no-deps joeynmt==2.3.0
  /tmp/fw-venv/bin/pip install sacrebleu subword-nmt sentencepiece tensorboard matplotlib
then
  python tools/make_joeynmt_fixtures.py --venv /tmp/fw-venv
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import sys
import tempfile

from fixture_common import run_command as _run, write_reversal_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "joeynmt")
MAX_LENGTH = 30
BEAM = 5
SOURCES = [
    "a", "b c", "d e f", "g h i j", "k l a b c", "d d e e f f", "a b c d e f g",
    "l k j i h g f e", "c a f z e", "b i d g e h a l c",
]


def _encoder(rnn_type, hidden, layers, emb=16, scale=False):
    return {"type": "recurrent", "rnn_type": rnn_type, "hidden_size": hidden,
            "bidirectional": True, "num_layers": layers,
            "embeddings": {"embedding_dim": emb, "scale": scale}}


def _decoder(rnn_type, hidden, layers, attention, init_hidden, input_feeding, emb=16,
             scale=False):
    return {"type": "recurrent", "rnn_type": rnn_type, "hidden_size": hidden,
            "num_layers": layers, "attention": attention, "init_hidden": init_hidden,
            "input_feeding": input_feeding,
            "embeddings": {"embedding_dim": emb, "scale": scale}}


# name -> (epochs, level, model section, what it exercises)
MODELS = {
    "gru_bahdanau_bridge_feed": (2, "word", {
        "encoder": _encoder("gru", 16, 1),
        "decoder": _decoder("gru", 32, 1, "bahdanau", "bridge", True)},
        "GRU, bahdanau attention, bridge, input feeding"),
    "lstm_luong_last_2layers": (3, "word", {
        "encoder": _encoder("lstm", 16, 2),
        "decoder": _decoder("lstm", 32, 2, "luong", "last", True)},
        "LSTM 2+2 layers, luong attention, init_hidden last (whole [fwd; bwd]), c0 = h0"),
    "lstm_bahdanau_lastfwd_nofeed_char": (2, "char", {
        "encoder": _encoder("lstm", 32, 1),
        "decoder": _decoder("lstm", 32, 1, "bahdanau", "last", False)},
        "char level, LSTM, bahdanau, init_hidden last (forward half), no input feeding"),
    "gru_luong_zero_tied_scaled": (3, "word", {
        "encoder": _encoder("gru", 16, 1, emb=32, scale=True),
        "decoder": _decoder("gru", 32, 2, "luong", "zero", True, emb=32, scale=True),
        "tied_softmax": True},
        "GRU 1+2 layers, luong, zero init, tied softmax, scaled embeddings"),
}


def _write_data(work):
    write_reversal_task(work, "dev", "trg")
    for ext in ("src", "trg"):  # the test "references" are unused; JoeyNMT wants the file
        with open(os.path.join(work, f"test.{ext}"), "w") as f:
            f.write("\n".join(SOURCES) + "\n")


def _config(name, epochs, level, model, work):
    side = {"level": level, "lowercase": False, "max_length": 60, "voc_min_freq": 1,
            "tokenizer_type": "none"}
    return {
        "name": name,
        "joeynmt_version": "2.3.0",
        "data": {"train": os.path.join(work, "train"), "dev": os.path.join(work, "dev"),
                 "test": os.path.join(work, "test"), "dataset_type": "plain",
                 "src": dict(side, lang="src"), "trg": dict(side, lang="trg")},
        "testing": {"n_best": 1, "beam_size": 1, "beam_alpha": 0,
                    "max_output_length": MAX_LENGTH, "return_prob": "hyp",
                    "batch_size": 4, "batch_type": "sentence", "eval_metrics": []},
        "training": {"random_seed": 1, "optimizer": "adam", "learning_rate": 0.005,
                     "scheduling": "exponential", "decrease_factor": 1.0,
                     "batch_size": 64, "batch_type": "sentence", "epochs": epochs,
                     "validation_freq": 100000, "logging_freq": 100,
                     "model_dir": os.path.join(work, name, "model"), "overwrite": True,
                     "use_cuda": False, "eval_metrics": ["bleu"]},
        "model": dict(model, initializer="xavier_uniform"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", required=True, help="virtualenv with JoeyNMT 2.x")
    parser.add_argument("--work", default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--only", nargs="*", help="fixture names to rebuild")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="joey-fixtures-")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", OMP_NUM_THREADS="2")
    env.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
    _write_data(work)
    python = os.path.join(args.venv, "bin", "python")
    for name, (epochs, level, model, what) in MODELS.items():
        if args.only and name not in args.only:
            continue
        print(f"{name}: {what}", file=sys.stderr)
        os.makedirs(os.path.join(work, name), exist_ok=True)
        config_path = os.path.join(work, name, "train.yaml")
        with open(config_path, "w") as f:
            json.dump(_config(name, epochs, level, model, work), f, indent=1)  # JSON is YAML
        _run([python, "-m", "joeynmt", "train", config_path, "--skip-test"], env, cwd=work)
        model_dir = os.path.join(work, name, "model")
        target = os.path.join(FIXTURES, name)
        os.makedirs(target, exist_ok=True)
        for f in ("config.yaml", "src_vocab.txt", "trg_vocab.txt"):
            shutil.copy(os.path.join(model_dir, f), target)
        _run([python, os.path.abspath(__file__), "--worker", target,
              os.path.join(model_dir, "latest.ckpt"), what], env, cwd=work)
        print(f"  wrote {target}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# worker: runs inside the JoeyNMT virtualenv


def _strip_checkpoint(source, target):
    import torch
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    kept = {k: v for k, v in checkpoint.items()
            if k not in ("optimizer_state", "scheduler_state", "scaler_state",
                         "train_iter_state")}
    torch.save(kept, target)


def _joey_test(config, work, beam, n_best):
    """`joeynmt test -o OUT --save-scores` (joeynmt.prediction.test), results re-read from
    the files it writes."""
    from joeynmt.prediction import test
    config = json.loads(json.dumps(config))
    config["testing"].update(beam_size=beam, n_best=n_best)
    out = os.path.join(work, f"pred-{beam}")
    test(config, output_path=out, save_scores=True)
    with open(out + ".test.tokens", encoding="utf-8") as f:
        tokens = [ast.literal_eval(line) for line in f if line.strip()]
    with open(out + ".test.scores", encoding="utf-8") as f:
        scores = [ast.literal_eval(line) for line in f if line.strip()]
    assert len(tokens) == len(scores) == n_best * len(SOURCES), (len(tokens), len(scores))
    results = []
    for i in range(len(SOURCES)):
        hyps = []
        for toks, score in zip(tokens[i * n_best:(i + 1) * n_best],
                               scores[i * n_best:(i + 1) * n_best]):
            ended = bool(toks) and toks[-1] == "</s>"
            # greedy: one log-probability per step, not cut at EOS (JoeyNMT's TODO)
            total = sum(score[:len(toks)]) if beam == 1 else score[0]
            hyps.append({"tokens": toks[:-1] if ended else toks, "score": float(total)})
        results.append(hyps)
    return results


def _oracle(config, work):
    """JoeyNMT's model one step at a time under the spec's beam search."""
    import numpy as np
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from oracle_search import beam_search
    from joeynmt.config import parse_global_args
    from joeynmt.prediction import prepare
    args = parse_global_args(json.loads(json.dumps(config)), rank=0, mode="test")
    model, _, _, test_data = prepare(args, rank=0, mode="test")
    model.eval()
    src_vocab, trg_vocab = model.src_vocab, model.trg_vocab
    tokenizer = test_data.tokenizer[test_data.src_lang]
    results = []
    with torch.no_grad():
        for sentence in SOURCES:
            tokens = tokenizer(tokenizer.pre_process(sentence))
            ids, lengths, _ = src_vocab.sentences_to_ids([tokens], bos=False, eos=True)
            src = torch.tensor(ids)
            length = torch.tensor(lengths)
            mask = (src != src_vocab.pad_index).unsqueeze(1)
            enc_out, enc_hidden, _, _ = model(return_type="encode", src=src,
                                              src_length=length, src_mask=mask)
            hidden = model.decoder._init_hidden(enc_hidden)
            if isinstance(hidden, tuple):
                hidden = tuple(h.permute(1, 0, 2) for h in hidden)
            else:
                hidden = hidden.permute(1, 0, 2)
            first = {"hidden": hidden, "att": None}

            def step(states, toks):
                n = len(states)
                if isinstance(states[0]["hidden"], tuple):
                    hid = tuple(torch.cat([s["hidden"][i] for s in states], 0)
                                for i in range(2))
                else:
                    hid = torch.cat([s["hidden"] for s in states], 0)
                att = None if states[0]["att"] is None else \
                    torch.cat([s["att"] for s in states], 0)
                logits, new_hidden, _, new_att = model(
                    return_type="decode", encoder_output=enc_out.expand(n, -1, -1),
                    encoder_hidden=None, src_mask=mask.expand(n, -1, -1),
                    trg_input=torch.tensor(toks).view(n, 1), decoder_hidden=hid,
                    att_vector=att, unroll_steps=1, trg_mask=None)
                log_probs = torch.log_softmax(logits.squeeze(1), dim=-1)
                new = []
                for i in range(n):
                    h = tuple(x[i:i + 1] for x in new_hidden) \
                        if isinstance(new_hidden, tuple) else new_hidden[i:i + 1]
                    new.append({"hidden": h, "att": new_att[i:i + 1]})
                return log_probs.numpy().astype(np.float32), new, None

            hyps = beam_search(step, first, trg_vocab.bos_index, trg_vocab.eos_index,
                               beam_size=BEAM, num_hypotheses=BEAM, min_length=1,
                               max_length=MAX_LENGTH)
            results.append([{"tokens": [trg_vocab._itos[i] for i in h[0]],
                             "score": float(h[1])} for h in hyps])
    return results


def worker(target, checkpoint, what):
    import yaml
    import joeynmt
    _strip_checkpoint(checkpoint, os.path.join(target, "best.ckpt"))
    with open(os.path.join(target, "config.yaml"), encoding="utf-8") as f:
        config = yaml.safe_load(f)
    work = tempfile.mkdtemp(prefix="joey-worker-")
    config["model_dir"] = config["training"]["model_dir"] = target  # vocabularies are here
    config["testing"]["load_model"] = os.path.join(target, "best.ckpt")
    config["data"]["dev"] = config["data"]["test"]
    greedy = _joey_test(config, work, 1, 1)
    beam = _joey_test(config, work, BEAM, BEAM)
    oracle = _oracle(config, work)
    level = config["data"]["src"].get("level", "word")
    data = {
        "framework": f"JoeyNMT {joeynmt.__version__}",
        "model": what,
        "sources": SOURCES,
        "level": level,
        "settings": {"max_output_length": MAX_LENGTH, "min_output_length": 1,
                     "beam_alpha": 0, "beam_size": BEAM, "n_best": BEAM},
        "greedy": [g[0] for g in greedy],
        "beam": beam,
        "oracle_beam": oracle,
        "beam_top_agrees_with_oracle": [b[0]["tokens"] == o[0]["tokens"]
                                        for b, o in zip(beam, oracle)],
    }
    with open(os.path.join(target, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
