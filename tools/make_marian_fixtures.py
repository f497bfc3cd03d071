"""Build the Marian converter fixtures in tests/fixtures/marian/ with real Marian (pymarian).

Each fixture is a tiny RNN model (dim-emb 16, dim-rnn 24) that Marian's own trainer
(`pymarian.Trainer`, CPU) trains for a few hundred updates on the toy task of the other
framework fixtures (reverse a sequence of letters, upper-cased). The fixture keeps what a
Marian user has after training: `model.npz` (the weights, with `special:model.yml` inside),
the vocabularies (`vocab.*.yml`, or `vocab.spm`) and `model.npz.decoder.yml`. Then Marian
itself (`pymarian.Translator`, i.e. marian-decoder) translates the fixture sentences under
several sets of search options, always with an explicit --beam-size and --normalize, with
--n-best (every hypothesis with its F0 log-probability and normalised score) and
--alignment, and --mini-batch 1 (Marian's --max-length-factor counts the longest source of
a mini-batch; one sentence per mini-batch makes every sentence its own limit, as rnnsearch
does). The raw output lines go into `expected.json`.

One fixture (`amun_legacy_output`) is the trained amun model with its output matrix stored
the way older Amun/Nematus files store it (`ff_logit_W`, [dim-emb, V], not transposed):
Marian reads that layout too, and its decoding of the rewritten file is the reference.

pymarian's wheel carries a ~1 GB library, so it is not a test dependency; install it into a
throwaway virtualenv (see tests/fixtures/README.md):
  python -m venv /tmp/marian-venv
  /tmp/marian-venv/bin/pip install pymarian==1.12.42 numpy
then
  /tmp/marian-venv/bin/python tools/make_marian_fixtures.py          # about 2 minutes
(`--only NAME...` rebuilds some fixtures, `--work DIR` keeps the scratch files,
`--decode-only` decodes the committed models again without training.)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_common import write_reversal_task  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "marian")

# the fixture sentences: lengths 1..10, an unknown token ("z"), an empty line (not last:
# Marian's reader drops a last empty line)
SOURCES = [
    "a", "b c", "d e f", "g h i j", "k l a b c", "", "d d e e f f", "a b c d e f g",
    "l k j i h g f e", "c a f z e", "b i d g e h a l c j",
]

# the search options each fixture is decoded with (all with --n-best and --mini-batch 1);
# DECODER_YML: marian-decoder -c model.npz.decoder.yml, the options saved with the model
DECODER_YML = "-c model.npz.decoder.yml"
DECODINGS = {
    "greedy": "--beam-size 1 --normalize 0 --alignment hard",
    "beam5": "--beam-size 5 --normalize 0.6 --alignment soft",
    "beam5_penalties": "--beam-size 5 --normalize 1 --word-penalty 0.5 "
                       "--max-length-factor 1.2 --alignment 0.2",
    "decoder_yml": DECODER_YML,
}
# search options written into a fixture's model.npz.decoder.yml (the trainer writes its
# validation defaults, beam-size 12 and normalize 0), as a user sets them there
DECODER_OPTIONS = {"s2s_deep_ln_tied": {"beam-size": 4, "normalize": 0.8,
                                        "word-penalty": 0.3, "max-length-factor": 2.0}}

COMMON = ("--dim-emb 16 --dim-rnn 24 --mini-batch 32 --cpu-threads 1 "
          "--learn-rate 0.01 --workspace 256 --disp-freq 1000 --quiet")

# name -> (updates, training options, vocabulary kind, what it exercises)
MODELS = {
    "s2s_base": (300, "--type s2s --seed 1", "yml",
                 "s2s defaults: gru cells, bidirectional encoder, conditional GRU decoder"),
    "s2s_deep_ln_tied": (
        400, "--type s2s --seed 2 --enc-depth 2 --enc-type alternating --enc-cell-depth 2 "
             "--dec-depth 2 --dec-cell-base-depth 3 --dec-cell-high-depth 2 --skip "
             "--layer-normalization --tied-embeddings", "yml",
        "alternating 2-layer encoder, deep transition everywhere, skip, Marian layer "
        "normalisation, decoder output tied to the target embeddings"),
    "s2s_nematus_cells_tied_all": (
        400, "--type s2s --seed 3 --enc-cell gru-nematus --dec-cell gru-nematus --enc-depth 2 "
             "--dec-depth 2 --layer-normalization --tied-embeddings-all "
             "--output-omit-bias", "joint",
        "gru-nematus cells (Nematus layer norm) with Marian-normalised attention and "
        "dense layers, 2+2 layers, one embedding for source, target and output, no output "
        "bias"),
    "nematus_deep_ln": (
        400, "--type nematus --seed 4 --enc-cell gru-nematus --dec-cell gru-nematus "
             "--enc-cell-depth 2 --dec-cell-base-depth 4 --layer-normalization "
             "--tied-embeddings", "yml",
        "--type nematus (Nematus names): deep transition encoder (2) and decoder (4), "
        "Nematus layer normalisation everywhere, tied target embeddings"),
    "amun": (300, "--type amun --seed 5 --tied-embeddings-src --layer-normalization", "joint",
             "--type amun (Amun names), shared source/target embeddings, Marian layer "
             "normalisation"),
    "amun_legacy_output": (300, "--type amun --seed 6", "yml",
                           "amun with the untransposed output matrix ff_logit_W of older "
                           "Amun/Nematus files"),
    "s2s_spm": (300, "--type s2s --seed 8 --dim-vocabs 28 28 --tied-embeddings-all", "spm",
                "a joint SentencePiece vocabulary (vocab.spm) that Marian trains itself: "
                "raw text in and out"),
    # refused: a transformer (one update; no expected output)
    "refused_transformer": (1, "--type transformer --seed 7 --enc-depth 1 --dec-depth 1 "
                               "--transformer-heads 2 --transformer-dim-ffn 16", "yml",
                            "a Marian transformer, which the converter refuses"),
}


def _train(work: str, name: str, updates: int, options: str, vocab_kind: str) -> str:
    import pymarian

    out = os.path.join(work, name)
    os.makedirs(out)
    if vocab_kind in ("joint", "spm"):
        vocabs = [os.path.join(out, "vocab." + ("spm" if vocab_kind == "spm" else "yml"))] * 2
    else:
        vocabs = [os.path.join(out, "vocab.src.yml"), os.path.join(out, "vocab.tgt.yml")]
    cli = (f"--model {out}/model.npz --train-sets {work}/train.src {work}/train.tgt "
           f"--vocabs {' '.join(vocabs)} --after {updates}u {COMMON} {options}")
    pymarian.Trainer(cli).train()
    return out


def _legacy_output(model_dir: str) -> None:
    """Store the output matrix as older Amun/Nematus files do: ff_logit_W [dim, V]."""
    path = os.path.join(model_dir, "model.npz")
    with np.load(path) as z:
        items = {k: z[k] for k in z.files}
    items["ff_logit_W"] = np.ascontiguousarray(items.pop("decoder_ff_logit_l2_Wt").T)
    np.savez(path, **items)


def _decode(model_dir: str, options: str) -> list[str]:
    """marian-decoder's n-best lines, from the options given (and, for DECODER_YML, only
    from the model's model.npz.decoder.yml: -c)."""
    import pymarian

    if options == DECODER_YML:
        model = f"-c {model_dir}/model.npz.decoder.yml"
    else:
        vocabs = [v for v in ("vocab.src.yml", "vocab.tgt.yml")
                  if os.path.exists(os.path.join(model_dir, v))] or \
            [v for v in ("vocab.yml", "vocab.spm")
             if os.path.exists(os.path.join(model_dir, v))] * 2
        vocab_paths = " ".join(os.path.join(model_dir, v) for v in vocabs)
        model = f"--models {model_dir}/model.npz --vocabs {vocab_paths} {options}"
    translator = pymarian.Translator(
        f"{model} --n-best --mini-batch 1 --maxi-batch 1 --cpu-threads 1 --quiet")
    return [line for output in translator.translate(SOURCES) for line in output.split("\n")]


def _record(model_dir: str, dest: str, name: str) -> None:
    import pymarian

    _, options, _, what = MODELS[name]
    expected = {"pymarian": pymarian.__version__, "what": what, "train_options": options,
                "decoder_yml": DECODER_OPTIONS.get(name, {}), "sources": SOURCES,
                "decodings": {key: {"options": opts, "nbest": _decode(model_dir, opts)}
                              for key, opts in DECODINGS.items()}}
    with open(os.path.join(dest, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


def _relative_decoder_yml(model_dir: str, name: str) -> None:
    """The trainer's model.npz.decoder.yml names the model and vocabularies by the paths
    used in training; point it at the files beside it instead (relative-paths), and set
    the search options DECODER_OPTIONS gives, as a user edits that file."""
    import yaml

    path = os.path.join(model_dir, "model.npz.decoder.yml")
    with open(path) as f:
        options = yaml.safe_load(f)
    options["relative-paths"] = True
    options["models"] = [os.path.basename(p) for p in options["models"]]
    options["vocabs"] = [os.path.basename(p) for p in options["vocabs"]]
    options.update(DECODER_OPTIONS.get(name, {}))
    with open(path, "w") as f:
        yaml.safe_dump(options, f, sort_keys=False)


def _keep(model_dir: str, dest: str) -> None:
    os.makedirs(dest, exist_ok=True)
    for name in os.listdir(model_dir):
        if name == "model.npz" or name.startswith("vocab.") or name.endswith(".decoder.yml"):
            shutil.copy(os.path.join(model_dir, name), os.path.join(dest, name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="fixture names to rebuild")
    parser.add_argument("--work", help="keep the scratch files here")
    parser.add_argument("--decode-only", action="store_true",
                        help="decode the committed models again (no training)")
    args = parser.parse_args()

    names = args.only or list(MODELS)
    if args.decode_only:
        for name in names:
            if not name.startswith("refused_"):
                _record(os.path.join(FIXTURES, name), os.path.join(FIXTURES, name), name)
        return
    work = args.work or tempfile.mkdtemp(prefix="marian-fixtures-")
    os.makedirs(work, exist_ok=True)
    write_reversal_task(work, "dev", "tgt")
    for name in names:
        updates, options, vocab_kind, what = MODELS[name]
        print(f"== {name}: {what}", flush=True)
        model_dir = _train(work, name, updates, options, vocab_kind)
        if name == "amun_legacy_output":
            _legacy_output(model_dir)
        _relative_decoder_yml(model_dir, name)
        dest = os.path.join(FIXTURES, name)
        shutil.rmtree(dest, ignore_errors=True)
        _keep(model_dir, dest)
        if not name.startswith("refused_"):
            _record(model_dir, dest, name)
    if not args.work:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
