"""Training tiny models with real OpenNMT-py (0.9.2, 1.x, 2.x, 3.x) for the converter fixtures
(used by make_opennmt_fixtures.py).

Every version trains with its own commands: 3.x and 2.x `onmt_build_vocab` + `onmt_train`
with a YAML config, 1.x `onmt_preprocess` + `onmt_train` with command-line flags, 0.9.2
`preprocess.py` + `train.py` from its source tree (0.x was never on PyPI). Checkpoints are
released by the version's own tool (optimizer state dropped).

Two toy tasks, seeded:
  reverse  reverse a sequence of letters a-l and upper-case it ("a b c" -> "C B A")
  copy     the same over letters and numbers 10-49, numbers kept as they are and a final
           "." added ("a 12 b" -> "B 12 A ."); the vocabularies are cut (source 30, target
           24 words) so that most numbers can only be produced by copying them
  copy_wide  the same with numbers 100-299 and vocabularies of 120 words
"""
from __future__ import annotations

import json
import os
import random

from fixture_common import run_command, write_reversal_task

COPY_LETTERS = list("abcdefghijkl")
# task -> (the numbers, the vocabulary sizes)
COPY_TASKS = {
    "copy": ([str(n) for n in range(10, 50)], {"src_vocab_size": 30, "tgt_vocab_size": 24}),
    # vocabularies of over 64 words: torch.topk then partial-sorts (see rs_topk_torch.h)
    "copy_wide": ([str(n) for n in range(100, 300)],
                  {"src_vocab_size": 120, "tgt_vocab_size": 120}),
}

# options every fixture model shares, by OpenNMT-py's own names
COMMON = {"word_vec_size": 16, "batch_size": 64, "optim": "adam", "learning_rate": 0.01,
          "dropout": 0.0, "report_every": 100, "seed": 1, "encoder_type": "rnn",
          "decoder_type": "rnn", "train_steps": 400}


def write_copy_task(work: str, numbers: list[str]) -> None:
    """train (3000) and valid (50) pairs of a copy task."""
    rng = random.Random(7)
    for split, count in (("train", 3000), ("valid", 50)):
        with open(os.path.join(work, f"{split}.src"), "w") as s, \
                open(os.path.join(work, f"{split}.tgt"), "w") as t:
            for _ in range(count):
                x = [rng.choice(numbers) if rng.random() < 0.3 else rng.choice(COPY_LETTERS)
                     for _ in range(rng.randint(2, 7))]
                s.write(" ".join(x) + "\n")
                t.write(" ".join(w.upper() for w in reversed(x)) + " .\n")


def write_task(work: str, task: str) -> None:
    if task == "reverse":
        write_reversal_task(work, "valid", "tgt")
    else:
        write_copy_task(work, COPY_TASKS[task][0])


def _flags(options: dict) -> list[str]:
    """OpenNMT-py 0.x/1.x command-line flags: True -> -name, False/None -> left out."""
    out = []
    for name, value in options.items():
        if value is True:
            out.append(f"-{name}")
        elif value not in (False, None):
            out += [f"-{name}", str(value)]
    return out


def train(name: str, version: int, task: str, options: dict, venv: str, work: str, env: dict,
          onmt0_source: str | None = None) -> str:
    """Train with the version's own commands in work/NAME; returns the released checkpoint."""
    data_dir = os.path.join(work, f"v{version}-{task}")
    os.makedirs(data_dir, exist_ok=True)
    if not os.path.exists(os.path.join(data_dir, "train.src")):
        write_task(data_dir, task)
    run_dir = os.path.join(work, name)
    os.makedirs(run_dir, exist_ok=True)
    options = dict(COMMON, **(COPY_TASKS[task][1] if task in COPY_TASKS else {}), **options)
    steps = options["train_steps"]
    trained = os.path.join(run_dir, f"model_step_{steps}.pt")
    released = os.path.join(run_dir, "model.pt")
    if version == 0:  # run from its source tree
        env = dict(env, PYTHONPATH=os.pathsep.join([onmt0_source, env.get("PYTHONPATH", "")]))
    if os.path.exists(trained):
        pass  # trained by an earlier run of the tool with the same --work
    elif version >= 2:
        _train_yaml(options, venv, data_dir, run_dir, env)
    else:
        _train_flags(version, options, venv, data_dir, run_dir, env, onmt0_source)
    if version >= 2:
        release = [os.path.join(venv, "bin", "onmt_release_model"), "-m", trained,
                   "-o", released]
    else:
        release = ([os.path.join(venv, "bin", "onmt_release_model")] if version == 1 else
                   [os.path.join(venv, "bin", "python"),
                    os.path.join(onmt0_source, "tools", "release_model.py")]) + \
            ["-m", trained, "-o", released]
    run_command(release, env, cwd=onmt0_source if version == 0 else None)
    return released


def _train_yaml(options, venv, data_dir, run_dir, env):
    """2.x / 3.x: onmt_build_vocab, then onmt_train, both from one YAML config."""
    steps = options["train_steps"]
    data = {"src_vocab": os.path.join(data_dir, "vocab.src"),
            "tgt_vocab": os.path.join(data_dir, "vocab.tgt"),
            "data": {"corpus_1": {"path_src": os.path.join(data_dir, "train.src"),
                                  "path_tgt": os.path.join(data_dir, "train.tgt")},
                     "valid": {"path_src": os.path.join(data_dir, "valid.src"),
                               "path_tgt": os.path.join(data_dir, "valid.tgt")}}}
    if not os.path.exists(data["src_vocab"]):
        vocab_config = os.path.join(run_dir, "vocab.yaml")
        with open(vocab_config, "w") as f:
            json.dump(dict(data, save_data=os.path.join(run_dir, "data"), overwrite=True), f)
        run_command([os.path.join(venv, "bin", "onmt_build_vocab"), "-config", vocab_config,
                     "-n_sample", "-1"], env)
    config = dict(data, **options, batch_type="sents",
                  save_model=os.path.join(run_dir, "model"), save_checkpoint_steps=steps,
                  valid_steps=10 * steps)
    config_path = os.path.join(run_dir, "train.yaml")
    with open(config_path, "w") as f:
        json.dump(config, f, indent=1)  # JSON is YAML
    run_command([os.path.join(venv, "bin", "onmt_train"), "-config", config_path], env)


def _train_flags(version, options, venv, data_dir, run_dir, env, onmt0_source):
    """0.9.2 / 1.x: preprocess into a data prefix, then train with flags."""
    steps = options["train_steps"]
    python = os.path.join(venv, "bin", "python")
    if version == 1:
        preprocess, train_cmd, cwd = ([os.path.join(venv, "bin", "onmt_preprocess")],
                                      [os.path.join(venv, "bin", "onmt_train")], None)
    else:
        preprocess, train_cmd, cwd = ([python, "preprocess.py"], [python, "train.py"],
                                      onmt0_source)
    prefix = os.path.join(run_dir, "data")
    sizes = {k: options.pop(k) for k in ("src_vocab_size", "tgt_vocab_size") if k in options}
    run_command(preprocess + _flags(dict(
        train_src=os.path.join(data_dir, "train.src"),
        train_tgt=os.path.join(data_dir, "train.tgt"),
        valid_src=os.path.join(data_dir, "valid.src"),
        valid_tgt=os.path.join(data_dir, "valid.tgt"),
        save_data=prefix, dynamic_dict=bool(options.get("copy_attn")), **sizes)), env, cwd=cwd)
    run_command(train_cmd + _flags(dict(
        options, data=prefix, save_model=os.path.join(run_dir, "model"),
        save_checkpoint_steps=steps, valid_steps=10 * steps)), env, cwd=cwd)


def stub_modules(work: str) -> str:
    """Empty stand-ins for modules OpenNMT-py imports for features these runs never use
    (3.x: spacy and fasttext transforms)."""
    stubs = os.path.join(work, "stubs")
    os.makedirs(stubs, exist_ok=True)
    for name in ("spacy", "fasttext"):
        with open(os.path.join(stubs, name + ".py"), "w") as f:
            f.write("# empty stand-in: OpenNMT-py imports it for transforms not used here\n")
    return stubs
