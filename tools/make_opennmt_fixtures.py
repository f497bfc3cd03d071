"""Build the OpenNMT-py converter fixtures in tests/fixtures/opennmt/ with real OpenNMT-py.

Each fixture is a tiny RNN model trained for a few hundred steps on a toy task (reverse a
sequence of letters and upper-case it) by OpenNMT-py's own `onmt_build_vocab` and
`onmt_train`, released with `onmt_release_model` (optimizer state dropped), then translated
by OpenNMT-py itself:
  greedy       onmt_translate's code path, -beam_size 1
  beam         onmt_translate's code path, -beam_size 5 -n_best 5
  oracle_beam  OpenNMT-py's own model (its encoder, decoder and generator, one step at a
               time) driven by tests/oracle_search.py, the spec's beam search (K = 5, N = 5)
All runs use -length_penalty none -max_length 30 (and -max_length_ratio 0 on 3.x).
Subword fixtures (SUBWORD_MODELS) also translate raw text through the same transforms
(raw_greedy, raw_beam); the replace_unk fixture (REPLACE_UNK_MODELS) also translates with
-replace_unk, with and without a phrase table (tests/fixtures/README.md).

OpenNMT-py pins its own torch; never install it next to the project. Make throwaway
virtualenvs that reuse the installed torch (see tests/fixtures/README.md):
  python -m venv --system-site-packages /tmp/fw-venv
  /tmp/fw-venv/bin/pip install --no-deps OpenNMT-py==3.5.1
  /tmp/fw-venv/bin/pip install pyonmttok configargparse sacrebleu rapidfuzz pyahocorasick \
      subword-nmt sentencepiece
  python -m venv --system-site-packages /tmp/fw2-venv
  /tmp/fw2-venv/bin/pip install --no-deps OpenNMT-py==2.3.0 torchtext==0.5.0
  /tmp/fw2-venv/bin/pip install --no-deps configargparse pyonmttok sentencepiece
  /tmp/fw2-venv/bin/pip install sacrebleu subword-nmt six tqdm
then
  python tools/make_opennmt_fixtures.py --onmt3 /tmp/fw-venv --onmt2 /tmp/fw2-venv
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "opennmt")
MAX_LENGTH = 30
BEAM = 5

# the sentences every fixture translates: lengths 1-9 (training saw 2-7), one unknown token
SOURCES = [
    "a", "b c", "d e f", "g h i j", "k l a b c", "d d e e f f", "a b c d e f g",
    "l k j i h g f e", "c a f z e", "b i d g e h a l c",
]

COMMON = {"word_vec_size": 16, "batch_size": 64, "batch_type": "sents", "optim": "adam",
          "learning_rate": 0.01, "dropout": 0.0, "report_every": 100, "seed": 1,
          "encoder_type": "rnn", "decoder_type": "rnn", "train_steps": 400}

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
PHRASE_TABLE = [f"{c}|||{c.upper()}" for c in "abcdefghjkl"] + ["x|||X"]
# raw sentences the subword fixtures translate: 1-4 words, one with characters never seen
SUBWORD_TEXTS = ["abc", "de f", "ghi jk l", "a b c d", "lkj ihg", "fed cba ab", "kal",
                 "bad cab fig", "zq ab", "jjj kkk"]

# trained briefly, converted never: the converter must refuse them (tests check the message)
REFUSED = {
    "refused_rnn_coverage_attn": (3, {
        "rnn_type": "LSTM", "layers": 1, "hidden_size": 16, "global_attention": "general",
        "input_feed": 1, "coverage_attn": True, "train_steps": 1},
        "coverage attention: the memory bank changes every step"),
}


def _env(work):
    stubs = os.path.join(work, "stubs")
    os.makedirs(stubs, exist_ok=True)
    for name in ("spacy", "fasttext"):
        with open(os.path.join(stubs, name + ".py"), "w") as f:
            f.write("# empty stand-in: OpenNMT-py imports it for transforms not used here\n")
    env = dict(os.environ, PYTHONPATH=stubs, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1",
               OMP_NUM_THREADS="2")
    env.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
    return env


def _write_data(work):
    write_reversal_task(work, "valid", "tgt")
    with open(os.path.join(work, "test.src"), "w") as f:
        f.write("\n".join(SOURCES) + "\n")


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
    """Train with OpenNMT-py's own commands; returns the released checkpoint's path."""
    run_dir = os.path.join(work, name)
    os.makedirs(run_dir, exist_ok=True)
    options = dict(options)
    subword = options.pop("_subword", None)
    extra = _train_subword_models(subword, venv, work, env) if subword else {}
    config = dict(COMMON, **_data_options(work), **options, **extra)
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
                           overwrite=True), f)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--onmt3", required=True, help="virtualenv with OpenNMT-py 3.x")
    parser.add_argument("--onmt2", required=True, help="virtualenv with OpenNMT-py 2.x")
    parser.add_argument("--work", default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--only", nargs="*", help="fixture names to rebuild")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="onmt-fixtures-")
    os.makedirs(work, exist_ok=True)
    env = _env(work)
    _write_data(work)
    venvs = {3: args.onmt3, 2: args.onmt2}
    every = {**MODELS, **SUBWORD_MODELS, **REPLACE_UNK_MODELS, **REFUSED}
    for name, (version, options, what) in every.items():
        if args.only and name not in args.only:
            continue
        print(f"{name}: {what}", file=sys.stderr)
        # every model trains in a scratch directory of its own (vocabularies differ)
        work_v = os.path.join(work, name)
        os.makedirs(work_v, exist_ok=True)
        if name in SUBWORD_MODELS:
            _write_words_task(work_v)
        else:
            for f in ("train.src", "train.tgt", "valid.src", "valid.tgt", "test.src"):
                shutil.copy(os.path.join(work, f), work_v)
        checkpoint = build_model(name, version, options, venvs[version], work_v, env)
        target = os.path.join(FIXTURES, name)
        os.makedirs(target, exist_ok=True)
        shutil.copy(checkpoint, os.path.join(target, "model.pt"))
        if name in REFUSED:
            continue
        mode = "plain"
        if name in SUBWORD_MODELS:
            mode = options["_subword"]
            ext = "spm.model" if mode == "sentencepiece" else "bpe.codes"
            for side, long in (("src", "source"), ("tgt", "target")):
                shutil.copy(os.path.join(work_v, f"{side}.{ext}"),
                            os.path.join(target, f"{long}.{ext}"))
        elif name in REPLACE_UNK_MODELS:
            mode = "replace_unk"
            with open(os.path.join(target, "phrase_table.txt"), "w") as f:
                f.write("\n".join(PHRASE_TABLE) + "\n")
        _run([os.path.join(venvs[version], "bin", "python"), os.path.abspath(__file__),
              "--worker", str(version), os.path.join(target, "model.pt"),
              os.path.join(work_v, "test.src"), os.path.join(target, "expected.json"), what,
              mode], env, cwd=work_v)
        print(f"  wrote {target}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# worker: runs inside an OpenNMT-py virtualenv


def _hyp(tokens, score):
    return {"tokens": list(tokens), "score": float(score)}


def _onmt_translate(version, model, src_path, beam, n_best, out_path, extra=()):
    """onmt_translate's own code path (onmt.bin.translate), keeping the scores it returns;
    `extra`: more onmt_translate options (transforms, -replace_unk, -phrase_table)."""
    args = ["-model", model, "-src", src_path, "-output", out_path, "-beam_size", str(beam),
            "-n_best", str(n_best), "-length_penalty", "none", "-max_length", str(MAX_LENGTH),
            "-batch_size", "4", "-seed", "1"] + list(extra)
    if version == 3:
        from onmt.bin.translate import _get_parser
        from onmt.inference_engine import InferenceEnginePY
        from onmt.utils.misc import set_random_seed
        from onmt.utils.parse import ArgumentParser
        opt = _get_parser().parse_args(args + ["-max_length_ratio", "0"])
        ArgumentParser.validate_translate_opts(opt)
        ArgumentParser._get_all_transform_translate(opt)
        ArgumentParser._validate_transforms_opts(opt)
        ArgumentParser.validate_translate_opts_dynamic(opt)
        set_random_seed(opt.seed, False)
        engine = InferenceEnginePY(opt)
        scores, predictions = engine.infer_file()
        engine.terminate()
    else:
        from onmt.bin.translate import _get_parser
        from onmt.translate.translator import build_translator
        from onmt.utils.logging import init_logger
        from onmt.utils.parse import ArgumentParser
        opt = _get_parser().parse_args(args)
        ArgumentParser.validate_translate_opts(opt)
        translator = build_translator(opt, logger=init_logger(), report_score=False)
        with open(src_path, "rb") as f:
            lines = f.readlines()
        scores, predictions = translator.translate(src=lines, batch_size=4,
                                                   batch_type="sents")
    with open(out_path, encoding="utf-8") as f:
        written = [line.rstrip("\n") for line in f]
    results = []
    for i, (sentence_scores, sentence_preds) in enumerate(zip(scores, predictions)):
        hyps = []
        for j, (score, text) in enumerate(zip(sentence_scores, sentence_preds)):
            assert written[i * n_best + j] == text, (written[i * n_best + j], text)
            hyps.append(_hyp(text.split(), float(score)))
            if extra and "-transforms" in extra:
                hyps[-1] = {"text": text, "score": float(score)}
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


def worker(version, model_path, src_path, output, what, mode):
    import onmt
    work = os.path.dirname(src_path)
    out = os.path.join(work, "pred.txt")
    raw = {}
    if mode in ("sentencepiece", "bpe"):
        text_path = os.path.join(work, "test.txt")
        with open(text_path, encoding="utf-8") as f:
            texts = [line.rstrip("\n") for line in f]
        _subword_pieces(mode, work, texts)
        transforms = ["-transforms", mode,
                      "-src_subword_model", os.path.join(work, f"src.{_EXT[mode]}"),
                      "-tgt_subword_model", os.path.join(work, f"tgt.{_EXT[mode]}")]
        raw = {"texts": texts,
               "raw_greedy": [g[0] for g in _onmt_translate(version, model_path, text_path, 1,
                                                            1, out, transforms)],
               "raw_beam": _onmt_translate(version, model_path, text_path, BEAM, BEAM, out,
                                           transforms)}
    with open(src_path, encoding="utf-8") as f:
        sources = [line.split() for line in f]
    greedy = _onmt_translate(version, model_path, src_path, 1, 1, out)
    beam = _onmt_translate(version, model_path, src_path, BEAM, BEAM, out)
    if mode == "replace_unk":
        table = ["-phrase_table", os.path.join(os.path.dirname(output), "phrase_table.txt")]
        for key, beam_size, options in (
                ("greedy_replace_unk", 1, ["-replace_unk"]),
                ("beam_replace_unk", BEAM, ["-replace_unk"]),
                ("greedy_replace_unk_phrase_table", 1, ["-replace_unk"] + table),
                ("beam_replace_unk_phrase_table", BEAM, ["-replace_unk"] + table)):
            raw[key] = _onmt_translate(version, model_path, src_path, beam_size, beam_size,
                                       out, options)
    oracle = _oracle(version, model_path, sources)
    agree = [b[0]["tokens"] == o[0]["tokens"] for b, o in zip(beam, oracle)]
    data = {
        "framework": f"OpenNMT-py {getattr(onmt, '__version__', version)}",
        "model": what,
        "sources": sources,
        "settings": {"max_length": MAX_LENGTH, "length_penalty": "none",
                     "max_length_ratio": 0, "min_length": 0, "beam_size": BEAM,
                     "n_best": BEAM},
        "greedy": [g[0] for g in greedy],
        "beam": beam,
        "oracle_beam": oracle,
        "beam_top_agrees_with_oracle": agree,
        **raw,
    }
    with open(output, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")


_EXT = {"sentencepiece": "spm.model", "bpe": "bpe.codes"}

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6],
               sys.argv[7])
    else:
        main()
