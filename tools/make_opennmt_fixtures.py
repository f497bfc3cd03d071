"""Build the OpenNMT-py converter fixtures in tests/fixtures/opennmt/ with real OpenNMT-py.

Each fixture is a tiny RNN model trained for a few hundred steps on a toy task by OpenNMT-py's
own commands (3.5.1, 2.3.0, 1.2.0 and 0.9.2: tools/opennmt_training.py), released with its
release tool (optimizer state dropped), then translated by OpenNMT-py itself:
  runs         onmt_translate's own code path with its decoding options one by one and in
               the summarization recipe (tools/opennmt_decoding.py), by the release that
               trained the model (0.9.2's checkpoint also by 1.2.0)
and, for the 2.x/3.x models without copy attention, the comparisons with the engine's
default search:
  greedy       onmt_translate's code path, -beam_size 1
  beam         onmt_translate's code path, -beam_size 5 -n_best 5
  oracle_beam  OpenNMT-py's own model (its encoder, decoder and generator, one step at a
               time) driven by tests/oracle_search.py, the spec's beam search (K = 5, N = 5)
(these use -length_penalty none -max_length 30, and -max_length_ratio 0 on 3.x).
Subword fixtures (SUBWORD_MODELS) also translate raw text through the same transforms
(raw_greedy, raw_beam); the replace_unk fixture (REPLACE_UNK_MODELS) also translates with
-replace_unk, with and without a phrase table (tests/fixtures/README.md). These are trained
by OpenNMT-py 3.x/2.x's onmt_build_vocab and onmt_train here (build_model) and translated by
text_worker.

OpenNMT-py pins its own torch; never install it next to the project. Make throwaway
virtualenvs that reuse torch 2.13.0, one per release, as tests/fixtures/README.md says, then
  python tools/make_opennmt_fixtures.py --onmt3 /tmp/fw-venv --onmt2 /tmp/fw2-venv \
      --onmt1 /tmp/fw1-venv --onmt0 /tmp/fw0-venv --onmt0-source /tmp/onmt-0.9.2
(OpenNMT-py 3.5 imports spacy and fasttext for transforms it never uses here; the tool
puts empty stand-in modules on the workers' PYTHONPATH instead of installing them.)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile

from fixture_common import LETTERS, run_command as _run, write_reversal_task
from opennmt_decoding import PHRASE_TABLE, PHRASE_TABLE_LINES, runs_for
from opennmt_training import COMMON, stub_modules, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "opennmt")
MAX_LENGTH = 30
BEAM = 5

# the sentences every fixture translates: lengths 1-9 (training saw 2-7), one unknown token
SOURCES = [
    "a", "b c", "d e f", "g h i j", "k l a b c", "d d e e f f", "a b c d e f g",
    "l k j i h g f e", "c a f z e", "b i d g e h a l c",
]
# the copy task's sentences: numbers in both vocabularies, in the source vocabulary only, in
# neither (copied from the source text), an unknown letter, a repeated number
COPY_SOURCES = [
    "a 12", "b 47 c", "d e 30 f", "g h 11 i j", "k 41 l a b", "d 45 d e 45 e",
    "a b c 33 d e f", "l k 19 j i h g f", "c a f z e", "b 12 d g 44 e h a l",
]
WIDE_SOURCES = [
    "a 120", "b 287 c", "d e 130 f", "g h 111 i j", "k 241 l a b", "d 145 d e 145 e",
    "a b c 233 d e f", "l k 199 j i h g f", "c a f z e 299", "b 112 d g 244 e h a l",
]

# the models every decoding option runs on (the others: the defaults and greedy)
FULL = {"brnn_lstm_general_feed_2layers", "rnn_gru_mlp_bridge", "rnn_lstm_noattention",
        "brnn_lstm_general_coverage", "v2_rnn_lstm_general_bridge",
        "v2_brnn_lstm_general_copy_mlp", "v2_rnn_gru_mlp_copy_reuse_coverage_bridge",
        "v1_brnn_lstm_mlp_copy_reuse_coverage_bridge", "v1_rnn_lstm_general_2layers",
        "v0_brnn_lstm_dot_copy_general", "v2_rnn_lstm_dot_copy_general_wide",
        "rnn_gru_general_wide", "v2_rnn_lstm_general_wide", "v1_rnn_gru_dot_wide"}

# name -> (OpenNMT-py major version, options, what it exercises)
MODELS = {
    "brnn_lstm_general_feed_2layers": (3, {
        "encoder_type": "brnn", "rnn_type": "LSTM", "layers": 2, "hidden_size": 32,
        "global_attention": "general", "input_feed": 1, "bridge": False},
        "brnn LSTM, 2 layers, general attention, input feeding, no bridge (last state)"),
    "rnn_gru_mlp_bridge": (3, {
        "rnn_type": "GRU", "layers": 1, "hidden_size": 32, "global_attention": "mlp",
        "input_feed": 0, "bridge": True},
        "rnn GRU, mlp attention (output layer folded), no input feeding, bridge"),
    "brnn_lstm_dot_bridge_2layers": (3, {
        "encoder_type": "brnn", "rnn_type": "LSTM", "layers": 2, "hidden_size": 32,
        "global_attention": "dot", "input_feed": 1, "bridge": True},
        "brnn LSTM, 2 layers, dot attention, input feeding, bridge (per-layer rows)"),
    "brnn_gru_general_feed_bridge": (3, {
        "encoder_type": "brnn", "rnn_type": "GRU", "layers": 1, "hidden_size": 32,
        "global_attention": "general", "input_feed": 1, "bridge": True},
        "brnn GRU, 1 layer, general attention, input feeding, bridge (one Linear per "
        "direction)"),
    "rnn_lstm_noattention": (3, {
        "rnn_type": "LSTM", "layers": 1, "hidden_size": 32, "global_attention": "none",
        "input_feed": 0, "bridge": False},
        "rnn LSTM without attention"),
    "v2_rnn_lstm_general_bridge": (2, {
        "rnn_type": "LSTM", "layers": 1, "rnn_size": 32, "global_attention": "general",
        "input_feed": 1, "bridge": True},
        "OpenNMT-py 2.x checkpoint (torchtext fields), LSTM, general, input feeding, bridge"),
    "brnn_gru_mlp_feed": (3, {
        "encoder_type": "brnn", "rnn_type": "GRU", "layers": 1, "hidden_size": 32,
        "global_attention": "mlp", "input_feed": 1, "bridge": False},
        "brnn GRU, mlp attention with input feeding (attentional vector without tanh, fed "
        "back)"),
    "rnn_lstm_general_feed_bridge_2layers": (3, {
        "rnn_type": "LSTM", "layers": 2, "hidden_size": 32, "global_attention": "general",
        "input_feed": 1, "bridge": True},
        "rnn LSTM, 2 layers, general attention, input feeding, bridge over both layers' "
        "final states (bridge.from all_layers)"),
    "brnn_lstm_mlp_feed_bridge_3layers": (3, {
        "encoder_type": "brnn", "rnn_type": "LSTM", "layers": 3, "hidden_size": 32,
        "global_attention": "mlp", "input_feed": 1, "bridge": True},
        "brnn LSTM, 3 layers, mlp attention with input feeding, bridge mixing the layers' "
        "final states (bridge.from all_layers)"),
}
# copy attention, coverage attention and the older OpenNMT-py versions (name -> (version,
# options, what)); "_task": copy trains on the copy task of tools/opennmt_training.py
MODELS.update({
    "brnn_lstm_general_coverage": (3, {
        "encoder_type": "brnn", "rnn_type": "LSTM", "layers": 1, "hidden_size": 32,
        "global_attention": "general", "input_feed": 1, "coverage_attn": True,
        "lambda_coverage": 0.5},
        "brnn LSTM, general attention with coverage_attn (linear_cover trained, unused when "
        "translating)"),
    "v2_brnn_lstm_general_copy_mlp": (2, {
        "_task": "copy", "encoder_type": "brnn", "rnn_type": "LSTM", "layers": 1,
        "rnn_size": 32, "global_attention": "general", "input_feed": 1, "copy_attn": True,
        "copy_attn_type": "mlp", "train_steps": 600},
        "OpenNMT-py 2.x copy attention (pointer-generator): its own mlp copy attention beside "
        "the general one"),
    "v2_rnn_gru_mlp_copy_reuse_coverage_bridge": (2, {
        "_task": "copy", "rnn_type": "GRU", "layers": 1, "rnn_size": 32,
        "global_attention": "mlp", "input_feed": 1, "copy_attn": True,
        "reuse_copy_attn": True, "coverage_attn": True, "lambda_coverage": 1.0,
        "bridge": True, "train_steps": 600},
        "OpenNMT-py 2.x GRU, copy attention reusing the mlp attention, coverage_attn, bridge"),
    "v1_brnn_lstm_mlp_copy_reuse_coverage_bridge": (1, {
        "_task": "copy", "encoder_type": "brnn", "rnn_type": "LSTM", "layers": 1,
        "rnn_size": 32, "global_attention": "mlp", "copy_attn": True, "reuse_copy_attn": True,
        "copy_loss_by_seqlength": True, "coverage_attn": True, "lambda_coverage": 1.0,
        "bridge": True, "train_steps": 600},
        "OpenNMT-py 1.2.0, the summarization recipe's model: brnn LSTM, mlp attention reused "
        "for copying, coverage_attn, bridge"),
    "v1_rnn_lstm_general_2layers": (1, {
        "rnn_type": "LSTM", "layers": 2, "rnn_size": 32, "global_attention": "general",
        "input_feed": 1},
        "OpenNMT-py 1.2.0 checkpoint (torchtext fields), 2-layer LSTM, general attention"),
    "v2_rnn_lstm_dot_copy_general_wide": (2, {
        "_task": "copy_wide", "rnn_type": "LSTM", "layers": 1, "rnn_size": 32,
        "global_attention": "dot", "input_feed": 1, "copy_attn": True,
        "copy_attn_type": "general", "train_steps": 600},
        "OpenNMT-py 2.x copy model with vocabularies of 120 (over 64: torch.topk's partial "
        "sort)"),
    "v2_rnn_lstm_general_wide": (2, {
        "_task": "copy_wide", "rnn_type": "LSTM", "layers": 1, "rnn_size": 32,
        "global_attention": "general", "input_feed": 1, "train_steps": 600},
        "OpenNMT-py 2.x on the wide copy task without copying: it says <unk> for the numbers "
        "it lacks (-replace_unk)"),
    "v1_rnn_gru_dot_wide": (1, {
        "_task": "copy_wide", "rnn_type": "GRU", "layers": 1, "rnn_size": 32,
        "global_attention": "dot", "train_steps": 600},
        "OpenNMT-py 1.2.0 on the wide copy task without copying (-replace_unk)"),
    "rnn_gru_general_wide": (3, {
        "_task": "copy_wide", "rnn_type": "GRU", "layers": 1, "hidden_size": 32,
        "global_attention": "general", "input_feed": 1, "train_steps": 600},
        "rnn GRU on vocabularies of 120 (over 64: torch.topk's partial sort)"),
    "v0_brnn_lstm_dot_copy_general": (0, {
        "_task": "copy", "encoder_type": "brnn", "rnn_type": "LSTM", "layers": 1,
        "rnn_size": 32, "global_attention": "dot", "copy_attn": True,
        "copy_attn_type": "general", "train_steps": 600},
        "OpenNMT-py 0.9.2 (from its source tree), brnn LSTM, dot attention, copy attention "
        "with its own general attention"),
})
# Raw text through subword transforms: a second toy task (reverse a line of letter "words",
# spaces included, upper-cased) whose text is cut into pieces by a SentencePiece model or
# subword-nmt BPE codes the tool trains on the training data. OpenNMT-py trains on the
# pieces (-transforms) and translates raw text with the same transforms; the model's files
# are committed beside the checkpoint as source.*/target.* for the converter's --source-spm,
# --target-spm and --bpe-codes. "_subword" names the transform.
SUBWORD_MODELS = {
    "spm_brnn_lstm_general_feed": (3, {
        "_subword": "sentencepiece", "encoder_type": "brnn", "rnn_type": "LSTM", "layers": 1,
        "hidden_size": 32, "global_attention": "general", "input_feed": 1, "bridge": False,
        "train_steps": 600},
        "SentencePiece transform on both sides; brnn LSTM, general attention, input feeding"),
    "bpe_rnn_gru_mlp_bridge": (3, {
        "_subword": "bpe", "rnn_type": "GRU", "layers": 1, "hidden_size": 32,
        "global_attention": "mlp", "input_feed": 1, "bridge": True, "train_steps": 600},
        "subword-nmt BPE transform on both sides; GRU, mlp attention, input feeding, bridge"),
}
# -replace_unk: a model whose target vocabulary lacks some letters (-tgt_vocab_size), so it
# learns to produce <unk> where they belong; OpenNMT-py 2.3.0 translates with -replace_unk,
# with and without a phrase table (3.5.1 replaces with the source *vocabulary* token and
# its beam search fails on -replace_unk with RNN models, so 2.x is the reference).
REPLACE_UNK_MODELS = {
    "v2_replace_unk_rnn_lstm_general": (2, {
        "rnn_type": "LSTM", "layers": 1, "rnn_size": 32, "global_attention": "general",
        "input_feed": 1, "bridge": True, "tgt_vocab_size": 9},
        "OpenNMT-py 2.x, target vocabulary of 9 letters (the rest <unk>), translated with "
        "-replace_unk (and a phrase table)"),
}
# source|||target, as OpenNMT-py reads it: every letter but "i" (so a replaced token is found
# in the table, or not), and an entry no source has
UNK_PHRASE_TABLE = [f"{c}|||{c.upper()}" for c in "abcdefghjkl"] + ["x|||X"]
# raw sentences the subword fixtures translate: 1-4 words, one with characters never seen
SUBWORD_TEXTS = ["abc", "de f", "ghi jk l", "a b c d", "lkj ihg", "fed cba ab", "kal",
                 "bad cab fig", "zq ab", "jjj kkk"]


def _env(work):
    env = dict(os.environ, PYTHONPATH=stub_modules(work), TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1",
               OMP_NUM_THREADS="1")
    env.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
    return env


def _test_sources(work, task):
    path = os.path.join(work, f"test-{task}.src")
    with open(path, "w") as f:
        f.write("\n".join({"copy": COPY_SOURCES, "copy_wide": WIDE_SOURCES}.get(task, SOURCES))
                + "\n")
    return path


def _translate(name, version, task, options, what, venvs, work, env, source0, target):
    """expected.json: OpenNMT-py's own translations of the fixture (0.9.2's checkpoint also
    by 1.2.0, since 0.9.2's beam search no longer runs)."""
    attention = options.get("global_attention", "general") != "none"
    copy = bool(options.get("copy_attn"))
    runs = runs_for(max(version, 1), attention, copy, name in FULL)
    data = {"trained_by": None, "model": what}
    merged = []
    if attention and name in FULL:
        with open(os.path.join(target, PHRASE_TABLE), "w") as f:
            f.write("\n".join(PHRASE_TABLE_LINES) + "\n")
    os.makedirs(os.path.join(work, name), exist_ok=True)
    for decoder in ([0, 1] if version == 0 else [version]):
        spec_path = os.path.join(work, name, f"decode-v{decoder}.json")
        part_path = os.path.join(work, name, f"decoded-v{decoder}.json")
        with open(spec_path, "w") as f:
            json.dump({"version": decoder, "model": os.path.join(target, "model.pt"),
                       "sources": _test_sources(work, task), "output": part_path,
                       "legacy": decoder == version and version >= 2 and not
                       options.get("copy_attn"), "runs": runs}, f)
        decode_env = env if decoder else dict(env, PYTHONPATH=os.pathsep.join(
            [source0, env["PYTHONPATH"]]))
        _run([os.path.join(venvs[decoder], "bin", "python"), os.path.abspath(__file__),
              "--worker", spec_path], decode_env, cwd=source0 if decoder == 0 else work)
        with open(part_path) as f:
            part = json.load(f)
        merged += part.pop("runs")
        if decoder == version:
            data.update(part, trained_by=part["framework"])
        data.pop("framework", None)
    data["runs"] = merged
    _write_expected(os.path.join(target, "expected.json"), data)


def _write_words_task(work):
    """train/valid pairs of the raw-text task: 1-3 words of 1-4 letters -> the whole line
    reversed and upper-cased ("abc de" -> "ED CBA"); test.txt holds SUBWORD_TEXTS."""
    rng = random.Random(1)
    for split, count in (("train", 3000), ("valid", 50)):
        with open(os.path.join(work, f"{split}.src"), "w") as s, \
                open(os.path.join(work, f"{split}.tgt"), "w") as t:
            for _ in range(count):
                words = ["".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 4)))
                         for _ in range(rng.randint(1, 3))]
                line = " ".join(words)
                s.write(line + "\n")
                t.write(line[::-1].upper() + "\n")
    with open(os.path.join(work, "test.txt"), "w") as f:
        f.write("\n".join(SUBWORD_TEXTS) + "\n")


def _train_subword_models(kind, venv, work, env):
    """SentencePiece models or BPE codes for both sides, trained on the training text by
    the libraries OpenNMT-py uses (in its virtualenv). Returns the transform options."""
    python = os.path.join(venv, "bin", "python")
    options = {"transforms": [kind]}
    for side in ("src", "tgt"):
        data = os.path.join(work, f"train.{side}")
        if kind == "sentencepiece":
            prefix = os.path.join(work, f"{side}.spm")
            script = ("import sentencepiece as s; s.SentencePieceTrainer.train(input=%r, "
                      "model_prefix=%r, vocab_size=24, model_type='unigram', "
                      "character_coverage=1.0, minloglevel=2)" % (data, prefix))
            path = prefix + ".model"
        else:
            path = os.path.join(work, f"{side}.bpe.codes")
            script = ("from subword_nmt.learn_bpe import learn_bpe; "
                      "learn_bpe(open(%r), open(%r, 'w'), 12)" % (data, path))
        _run([python, "-c", script], env)
        options[f"{side}_subword_model"] = path
    return options


def _data_options(work):
    return {"src_vocab": os.path.join(work, "vocab.src"),
            "tgt_vocab": os.path.join(work, "vocab.tgt"),
            "data": {"corpus_1": {"path_src": os.path.join(work, "train.src"),
                                  "path_tgt": os.path.join(work, "train.tgt")},
                     "valid": {"path_src": os.path.join(work, "valid.src"),
                               "path_tgt": os.path.join(work, "valid.tgt")}}}


def build_model(name, version, options, venv, work, env):
    """Train a text fixture (3.x/2.x) with OpenNMT-py's own commands; returns the released
    checkpoint's path."""
    run_dir = os.path.join(work, name)
    os.makedirs(run_dir, exist_ok=True)
    options = dict(options)
    subword = options.pop("_subword", None)
    extra = _train_subword_models(subword, venv, work, env) if subword else {}
    config = dict(COMMON, batch_type="sents", **_data_options(work), **options,
                  **extra)
    steps = config["train_steps"]
    config.update(save_model=os.path.join(run_dir, "model"), save_checkpoint_steps=steps,
                  valid_steps=10 * steps)
    config_path = os.path.join(run_dir, "train.yaml")
    with open(config_path, "w") as f:
        json.dump(config, f, indent=1)  # JSON is YAML
    if not os.path.exists(os.path.join(work, "vocab.src")):
        vocab_config = os.path.join(run_dir, "vocab.yaml")
        with open(vocab_config, "w") as f:
            json.dump(dict(_data_options(work), save_data=os.path.join(run_dir, "data"),
                           overwrite=True, **extra), f)
        _run([os.path.join(venv, "bin", "onmt_build_vocab"), "-config", vocab_config,
              "-n_sample", "-1"], env)
    _run([os.path.join(venv, "bin", "onmt_train"), "-config", config_path], env)
    trained = os.path.join(run_dir, f"model_step_{steps}.pt")
    released = os.path.join(run_dir, "model.pt")
    _run([os.path.join(venv, "bin", "onmt_release_model"), "-m", trained, "-o", released], env)
    return released


def _build_text_fixture(name, version, options, what, venvs, work, env):
    """A subword or replace_unk fixture: trained in work/NAME, translated by text_worker."""
    work_v = os.path.join(work, name)
    os.makedirs(work_v, exist_ok=True)
    target = os.path.join(FIXTURES, name)
    os.makedirs(target, exist_ok=True)
    if name in SUBWORD_MODELS:
        _write_words_task(work_v)
    else:
        write_reversal_task(work_v, "valid", "tgt")
        with open(os.path.join(work_v, "test.src"), "w") as f:
            f.write("\n".join(SOURCES) + "\n")
    checkpoint = build_model(name, version, options, venvs[version], work_v, env)
    shutil.copy(checkpoint, os.path.join(target, "model.pt"))
    mode = "plain"
    if name in SUBWORD_MODELS:
        mode = options["_subword"]
        for side, long in (("src", "source"), ("tgt", "target")):
            shutil.copy(os.path.join(work_v, f"{side}.{_EXT[mode]}"),
                        os.path.join(target, f"{long}.{_EXT[mode]}"))
    elif name in REPLACE_UNK_MODELS:
        mode = "replace_unk"
        with open(os.path.join(target, "phrase_table.txt"), "w") as f:
            f.write("\n".join(UNK_PHRASE_TABLE) + "\n")
    _run([os.path.join(venvs[version], "bin", "python"), os.path.abspath(__file__),
          "--text-worker", str(version), os.path.join(target, "model.pt"),
          os.path.join(work_v, "test.src"), os.path.join(target, "expected.json"), what, mode],
         env, cwd=work_v)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--onmt3", required=True, help="virtualenv with OpenNMT-py 3.x")
    parser.add_argument("--onmt2", required=True, help="virtualenv with OpenNMT-py 2.x")
    parser.add_argument("--onmt1", required=True, help="virtualenv with OpenNMT-py 1.x")
    parser.add_argument("--onmt0", required=True,
                        help="virtualenv for OpenNMT-py 0.9.2 (torchtext 0.4.0)")
    parser.add_argument("--onmt0-source", required=True,
                        help="OpenNMT-py 0.9.2's source tree (git archive of its tag)")
    parser.add_argument("--work", default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--only", nargs="*", help="fixture names to rebuild")
    parser.add_argument("--decode-only", action="store_true",
                        help="keep the committed checkpoints, only translate them again")
    parser.add_argument("--train-only", action="store_true",
                        help="train and release the checkpoints, translate nothing")
    args = parser.parse_args()
    work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="onmt-fixtures-"))
    os.makedirs(work, exist_ok=True)
    env = _env(work)
    venvs = {3: args.onmt3, 2: args.onmt2, 1: args.onmt1, 0: args.onmt0}
    source0 = os.path.abspath(args.onmt0_source)
    for name, (version, options, what) in MODELS.items():
        if args.only and name not in args.only:
            continue
        print(f"{name}: {what}", file=sys.stderr)
        options = dict(options)
        task = options.pop("_task", "reverse")
        target = os.path.join(FIXTURES, name)
        os.makedirs(target, exist_ok=True)
        if not args.decode_only:
            checkpoint = train(name, version, task, options, venvs[version], work, env,
                               source0)
            shutil.copy(checkpoint, os.path.join(target, "model.pt"))
        if args.train_only:
            continue
        _translate(name, version, task, options, what, venvs, work, env, source0, target)
        print(f"  wrote {target}", file=sys.stderr)
    for name, (version, options, what) in {**SUBWORD_MODELS, **REPLACE_UNK_MODELS}.items():
        if args.only and name not in args.only or args.decode_only or args.train_only:
            continue
        print(f"{name}: {what}", file=sys.stderr)
        _build_text_fixture(name, version, options, what, venvs, work, env)
        print(f"  wrote {os.path.join(FIXTURES, name)}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# worker: runs inside an OpenNMT-py virtualenv


def _hyp(tokens, score):
    return {"tokens": list(tokens), "score": float(score)}


def _onmt_translate(version, model, src_path, beam, n_best, out_path, extra=None):
    """onmt_translate's own code path (onmt.bin.translate), keeping the scores it returns;
    `extra`: more onmt_translate options by name (transforms, replace_unk, phrase_table)."""
    from opennmt_decoding import onmt_translate
    flags = {"beam_size": beam, "n_best": n_best, "length_penalty": "none",
             "max_length": MAX_LENGTH, "batch_size": 4, "seed": 1, **(extra or {})}
    if version == 3:
        flags["max_length_ratio"] = 0
    scores, predictions = onmt_translate(version, model, src_path, out_path, flags)
    with open(out_path, encoding="utf-8") as f:
        written = [line.rstrip("\n") for line in f]
    results = []
    for i, (sentence_scores, sentence_preds) in enumerate(zip(scores, predictions)):
        hyps = []
        for j, (score, text) in enumerate(zip(sentence_scores, sentence_preds)):
            assert written[i * n_best + j] == text, (written[i * n_best + j], text)
            hyps.append({"text": text, "score": float(score)} if extra and "transforms" in extra
                        else _hyp(text.split(), float(score)))
        results.append(hyps)
    return results


def _oracle(version, model_path, sources):
    """OpenNMT-py's model, one decoder step at a time, under the spec's beam search."""
    import numpy as np
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from oracle_search import beam_search
    from onmt.bin.translate import _get_parser
    from onmt.model_builder import load_test_model
    opt = _get_parser().parse_args(["-model", model_path, "-src", "x"])
    loaded = load_test_model(opt)
    model = loaded[1]
    model.eval()
    if version == 3:
        vocabs = loaded[0]
        src_ids = lambda toks: vocabs["src"](toks)  # noqa: E731
        tgt_itos = vocabs["tgt"].ids_to_tokens
        bos, eos = vocabs["tgt"]["<s>"], vocabs["tgt"]["</s>"]
    else:
        fields = loaded[0]
        src_vocab = fields["src"].base_field.vocab
        tgt_vocab = fields["tgt"].base_field.vocab
        src_ids = lambda toks: [src_vocab.stoi[t] for t in toks]  # noqa: E731
        tgt_itos = tgt_vocab.itos
        bos, eos = tgt_vocab.stoi["<s>"], tgt_vocab.stoi["</s>"]
    decoder = model.decoder
    results = []
    with torch.no_grad():
        for sentence in sources:
            ids = torch.tensor(src_ids(sentence), dtype=torch.long)
            length = torch.tensor([len(ids)])
            if version == 3:
                src = ids.view(1, -1, 1)
                enc_out, final, length = model.encoder(src, length)
                decoder.init_state(src, enc_out, final)
            else:
                src = ids.view(-1, 1, 1)
                final, enc_out, length = model.encoder(src, length)
                decoder.init_state(src, enc_out, final)
            first = {"hidden": tuple(h.clone() for h in decoder.state["hidden"]),
                     "input_feed": decoder.state["input_feed"].clone()}

            def step(states, tokens):
                n = len(states)
                decoder.state["hidden"] = tuple(
                    torch.cat([s["hidden"][i] for s in states], 1)
                    for i in range(len(states[0]["hidden"])))
                decoder.state["input_feed"] = torch.cat([s["input_feed"] for s in states], 1)
                decoder.state["coverage"] = None
                tok = torch.tensor(tokens, dtype=torch.long)
                if version == 3:
                    out, _ = decoder(tok.view(n, 1, 1), enc_out.expand(n, -1, -1),
                                     src_len=length.expand(n), step=0)
                    logits = model.generator(out.squeeze(1))
                    log_probs = torch.log_softmax(logits.float(), dim=-1)
                else:
                    out, _ = decoder(tok.view(1, n, 1), enc_out.expand(-1, n, -1),
                                     memory_lengths=length.expand(n), step=0)
                    log_probs = model.generator(out.squeeze(0))  # ends with LogSoftmax
                new = [{"hidden": tuple(h[:, i:i + 1] for h in decoder.state["hidden"]),
                        "input_feed": decoder.state["input_feed"][:, i:i + 1]}
                       for i in range(n)]
                return log_probs.numpy().astype(np.float32), new, None

            hyps = beam_search(step, first, bos, eos, beam_size=BEAM, num_hypotheses=BEAM,
                               max_length=MAX_LENGTH)
            results.append([_hyp([tgt_itos[i] for i in h[0]], h[1]) for h in hyps])
    return results


def _default_search_comparisons(version, model_path, src_path, sources, out):
    """greedy, beam (K = N = 5) and oracle_beam, the runs the engine's default search is
    compared with."""
    greedy = _onmt_translate(version, model_path, src_path, 1, 1, out)
    beam = _onmt_translate(version, model_path, src_path, BEAM, BEAM, out)
    oracle = _oracle(version, model_path, sources)
    return {
        "settings": {"max_length": MAX_LENGTH, "length_penalty": "none",
                     "max_length_ratio": 0, "min_length": 0, "beam_size": BEAM,
                     "n_best": BEAM},
        "greedy": [g[0] for g in greedy],
        "beam": beam,
        "oracle_beam": oracle,
        "beam_top_agrees_with_oracle": [b[0]["tokens"] == o[0]["tokens"]
                                        for b, o in zip(beam, oracle)],
    }


def worker(spec_path):
    """Translate one fixture model with this virtualenv's OpenNMT-py as the spec says."""
    import onmt
    from opennmt_decoding import run_all
    with open(spec_path) as f:
        spec = json.load(f)
    version, model_path, src_path = spec["version"], spec["model"], spec["sources"]
    with open(src_path) as f:
        sources = [line.split() for line in f]
    work = os.path.dirname(spec_path)
    framework = f"OpenNMT-py {getattr(onmt, '__version__', None) or '0.9.2'}"
    data = {"framework": framework, "sources": sources}
    if spec["legacy"]:  # the comparisons with the engine's default search
        data.update(_default_search_comparisons(version, model_path, src_path, sources,
                                                os.path.join(work, "pred.txt")))
    data["runs"] = [dict(run, decoded_by=framework)
                    for run in run_all(version, model_path, src_path, spec["runs"], work)]
    with open(spec["output"], "w", encoding="utf-8") as f:
        json.dump(data, f)


def _subword_pieces(kind, work, texts):
    """The source pieces OpenNMT-py's transform makes of each raw line (the libraries it
    calls, the same way), written to test.src for the token-level runs."""
    if kind == "sentencepiece":
        import sentencepiece
        model = sentencepiece.SentencePieceProcessor(
            model_file=os.path.join(work, "src.spm.model"))
        pieces = [model.encode(text, out_type=str) for text in texts]
    else:
        from subword_nmt.apply_bpe import BPE
        with open(os.path.join(work, "src.bpe.codes"), encoding="utf-8") as codes:
            bpe = BPE(codes)
        pieces = [bpe.segment_tokens(text.split(" ")) for text in texts]
    with open(os.path.join(work, "test.src"), "w", encoding="utf-8") as f:
        f.write("\n".join(" ".join(p) for p in pieces) + "\n")
    return pieces


def text_worker(version, model_path, src_path, output, what, mode):
    """Translate a subword or replace_unk fixture (greedy, beam, oracle and the mode's runs)."""
    import onmt
    work = os.path.dirname(src_path)
    out = os.path.join(work, "pred.txt")
    raw = {}
    if mode in ("sentencepiece", "bpe"):
        text_path = os.path.join(work, "test.txt")
        with open(text_path, encoding="utf-8") as f:
            texts = [line.rstrip("\n") for line in f]
        _subword_pieces(mode, work, texts)
        transforms = {"transforms": mode,
                      "src_subword_model": os.path.join(work, f"src.{_EXT[mode]}"),
                      "tgt_subword_model": os.path.join(work, f"tgt.{_EXT[mode]}")}
        raw = {"texts": texts,
               "raw_greedy": [g[0] for g in _onmt_translate(version, model_path, text_path, 1,
                                                            1, out, transforms)],
               "raw_beam": _onmt_translate(version, model_path, text_path, BEAM, BEAM, out,
                                           transforms)}
    with open(src_path, encoding="utf-8") as f:
        sources = [line.split() for line in f]
    compared = _default_search_comparisons(version, model_path, src_path, sources, out)
    if mode == "replace_unk":
        table = {"phrase_table": os.path.join(os.path.dirname(output), "phrase_table.txt")}
        for key, beam_size, options in (
                ("greedy_replace_unk", 1, {"replace_unk": True}),
                ("beam_replace_unk", BEAM, {"replace_unk": True}),
                ("greedy_replace_unk_phrase_table", 1, {"replace_unk": True, **table}),
                ("beam_replace_unk_phrase_table", BEAM, {"replace_unk": True, **table})):
            raw[key] = _onmt_translate(version, model_path, src_path, beam_size, beam_size,
                                       out, options)
    data = {
        "trained_by": f"OpenNMT-py {getattr(onmt, '__version__', version)}",
        "model": what,
        "sources": sources,
        **compared,
        **raw,
    }
    with open(output, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")


_EXT = {"sentencepiece": "spm.model", "bpe": "bpe.codes"}


def _write_expected(path: str, data: dict) -> None:
    """expected.json with one line per sentence's results (small, readable diffs)."""
    parts = []
    for key, value in data.items():
        if key != "runs":
            parts.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
            continue
        items = []
        for run in value:
            head = json.dumps({k: v for k, v in run.items() if k != "results"},
                              ensure_ascii=False)
            if "results" in run:
                body = ",\n    ".join(json.dumps(r, ensure_ascii=False) for r in run["results"])
                head = head[:-1] + ', "results": [\n    ' + body + "]}"
            items.append("  " + head)
        parts.append(' "runs": [\n' + ",\n".join(items) + "]")
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n" + ",\n".join(parts) + "\n}\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "--text-worker":
        text_worker(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6],
                    sys.argv[7])
    else:
        main()
