"""rnnsearch (search="opennmt") against onmt_translate on the same OpenNMT-py model, one thread.

    python tools/bench_opennmt.py --onmt /tmp/onmt3-venv [--preset nmt|small|tiny|lstm128]
    python tools/bench_opennmt.py --onmt /tmp/onmt2-venv --preset summarization
        [--sentences 60] [--repeat 3] [--work DIR]

1. OpenNMT-py (in its own virtualenv, like tools/make_opennmt_fixtures.py) trains a model of
   the preset's size for one step on synthetic data (the weights are as good as random; the
   work per token is a trained model's) and releases it; rnnsearch converts it.
2. In one process of that virtualenv (rnnsearch imported from this checkout's src/, whose
   engine must be built for the same Python), both translate the same sentences with
   onmt_translate's defaults and -beam_size 5: onmt_translate in-process (3.x:
   InferenceEnginePY.infer_list, 2.x: Translator.translate, what onmt_translate runs per
   file) and rnnsearch's translate_batch(search="opennmt"), at -batch_size 1 and 30, one
   thread each (torch.set_num_threads(1), intra_threads=1), alternating within every
   repetition, warm (one untimed run each first). Outputs must be identical.
3. Prints a Markdown table: median [min-max] milliseconds per sentence (wall; CPU time of the
   median run beside it) and how many times faster rnnsearch is, by wall time and by CPU
   time (on a shared machine the CPU ratio is the steadier one).

--floor adds each case's FMA floor: the multiply-adds of the rows rnnsearch's decoder
stepped (counted by the engine, rnnsearch.opennmt_search.translate(stats=...)) and of the
encoder over every source (rnnsearch.bench.floors.decoded_macs), at this core's FMA peak
(tools/cpu_peak.py, measured first), and onmt_translate's time over it: the most a float32
engine could be faster than onmt_translate on this core while doing the same search. (At
batch 1 reading the weights can cost more than their arithmetic: the floor then is higher.)

Presets: nmt (OpenNMT-py's RNN defaults of 2.x: 2-layer LSTM, 500 hidden, 500 embeddings,
general attention, input feeding; vocabularies of 20000), summarization (the CNN/DailyMail
copy model: brnn 1 layer 512, 128 embeddings, mlp attention reused for copying, bridge;
vocabularies of 50000), small (a 1-layer GRU of 256, vocabularies 8000), tiny (a brnn LSTM of
64, vocabularies 1000), lstm128 (embeddings 64, a 2-layer LSTM of 128, vocabularies 200: the
small model of tools/bench_overhead.py).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESETS = {
    "nmt": ({"encoder_type": "rnn", "rnn_type": "LSTM", "layers": 2, "word_vec_size": 500,
             "global_attention": "general", "input_feed": 1}, 500, 20000, ""),
    "summarization": ({"encoder_type": "brnn", "rnn_type": "LSTM", "layers": 1,
                       "word_vec_size": 128, "global_attention": "mlp", "copy_attn": True,
                       "reuse_copy_attn": True, "bridge": True}, 512, 50000,
                      " (copy attention)"),
    "small": ({"encoder_type": "rnn", "rnn_type": "GRU", "layers": 1, "word_vec_size": 128,
               "global_attention": "general", "input_feed": 1}, 256, 8000, ""),
    "tiny": ({"encoder_type": "brnn", "rnn_type": "LSTM", "layers": 1, "word_vec_size": 32,
              "global_attention": "general", "input_feed": 1}, 64, 1000, ""),
    "lstm128": ({"encoder_type": "rnn", "rnn_type": "LSTM", "layers": 2, "word_vec_size": 64,
                 "global_attention": "general", "input_feed": 1}, 128, 200, ""),
}
SOURCE_LENGTH = (15, 25)


def _words(n):
    return [f"w{i}" for i in range(n)]


def make_model(onmt_venv: str, preset: str, work: str, version: int) -> str:
    """Train one step with the virtualenv's OpenNMT-py; returns the released checkpoint."""
    options, hidden, vocab, _ = PRESETS[preset]
    rng = random.Random(0)
    words = _words(vocab)
    for split, count in (("train", 4000), ("valid", 20)):
        with open(os.path.join(work, f"{split}.src"), "w") as s, \
                open(os.path.join(work, f"{split}.tgt"), "w") as t:
            for _ in range(count):
                s.write(" ".join(rng.choice(words) for _ in range(rng.randint(*SOURCE_LENGTH)))
                        + "\n")
                t.write(" ".join(rng.choice(words) for _ in range(rng.randint(*SOURCE_LENGTH)))
                        + "\n")
    data = {"src_vocab": os.path.join(work, "vocab.src"),
            "tgt_vocab": os.path.join(work, "vocab.tgt"),
            "src_vocab_size": vocab, "tgt_vocab_size": vocab,
            "data": {"corpus_1": {"path_src": os.path.join(work, "train.src"),
                                  "path_tgt": os.path.join(work, "train.tgt")},
                     "valid": {"path_src": os.path.join(work, "valid.src"),
                               "path_tgt": os.path.join(work, "valid.tgt")}}}
    size = {"hidden_size" if version >= 3 else "rnn_size": hidden}
    config = dict(data, **options, **size, decoder_type="rnn", batch_size=16,
                  train_steps=1, save_model=os.path.join(work, "model"),
                  save_checkpoint_steps=1, valid_steps=100, seed=1)
    for name, body in (("vocab.yaml", dict(data, save_data=os.path.join(work, "d"),
                                           overwrite=True)), ("train.yaml", config)):
        with open(os.path.join(work, name), "w") as f:
            json.dump(body, f)
    env = _env(work)
    bin_dir = os.path.join(onmt_venv, "bin")
    for command in ([os.path.join(bin_dir, "onmt_build_vocab"), "-config",
                     os.path.join(work, "vocab.yaml"), "-n_sample", "-1"],
                    [os.path.join(bin_dir, "onmt_train"), "-config",
                     os.path.join(work, "train.yaml")],
                    [os.path.join(bin_dir, "onmt_release_model"), "-m",
                     os.path.join(work, "model_step_1.pt"), "-o",
                     os.path.join(work, "model.pt")]):
        subprocess.run(command, env=env, check=True, capture_output=True)
    return os.path.join(work, "model.pt")


def _env(work):
    stubs = os.path.join(work, "stubs")
    os.makedirs(stubs, exist_ok=True)
    for name in ("spacy", "fasttext"):  # 3.x imports them for transforms not used here
        open(os.path.join(stubs, name + ".py"), "w").close()
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([stubs, os.path.join(ROOT, "src")]))
    env.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
    return env


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onmt", required=True, help="virtualenv with OpenNMT-py 2.x or 3.x")
    ap.add_argument("--preset", default="nmt", choices=sorted(PRESETS))
    ap.add_argument("--sentences", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", default=None)
    ap.add_argument("--floor", action="store_true",
                    help="add the FMA floor of each case (tools/cpu_peak.py's peak)")
    args = ap.parse_args(argv)
    peak = None
    if args.floor:
        from cpu_peak import describe, measure   # tools/, this script's directory
        peak = measure(3)
        print(describe(peak) + "\n")
    work = args.work or tempfile.mkdtemp(prefix="bench-opennmt-")
    os.makedirs(work, exist_ok=True)
    python = os.path.join(args.onmt, "bin", "python")
    version = int(subprocess.run([python, "-c", "import onmt; print(onmt.__version__[0])"],
                                 env=_env(work), capture_output=True, text=True,
                                 check=True).stdout.strip())
    if version >= 3 and PRESETS[args.preset][0].get("copy_attn"):
        ap.error("OpenNMT-py 3.x cannot load its own copy-attention checkpoints (its issue "
                 "#2503): run the summarization preset with a 2.x virtualenv")
    checkpoint = os.path.join(work, "model.pt")
    if not os.path.exists(checkpoint):
        make_model(args.onmt, args.preset, work, version)
    model_dir = os.path.join(work, "rnnsearch-model")
    if not os.path.exists(os.path.join(model_dir, "config.json")):
        subprocess.run([sys.executable, "-m", "rnnsearch", "convert", "--from", "opennmt-py",
                        checkpoint, "-o", model_dir], check=True)
    rng = random.Random(1)
    words = _words(PRESETS[args.preset][2])
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(*SOURCE_LENGTH)))
             for _ in range(args.sentences)]
    spec = {"version": version, "checkpoint": checkpoint, "model_dir": model_dir,
            "lines": lines, "repeat": args.repeat, "work": work, "floor": args.floor}
    spec_path = os.path.join(work, "spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    done = subprocess.run([python, os.path.abspath(__file__), "--harness", spec_path],
                          env=_env(work), capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        return 1
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    options, hidden, vocab, note = PRESETS[args.preset]
    print(f"preset {args.preset}: OpenNMT-py {rows['onmt_version']} {options['encoder_type']} "
          f"{options['rnn_type']} {options['layers']}x{hidden}, embeddings "
          f"{options['word_vec_size']}, {options['global_attention']} attention{note}, "
          f"vocabularies {vocab}; {args.sentences} sentences of {SOURCE_LENGTH[0]}-"
          f"{SOURCE_LENGTH[1]} tokens; onmt_translate's defaults, -beam_size 5; one thread; "
          f"outputs identical: {rows['identical']}")
    print()
    print("| case | onmt_translate ms/sent. (CPU) | rnnsearch ms/sent. (CPU) | × | × CPU |"
          + (" decoded rows | FMA floor ms/sent. | onmt ÷ floor |" if peak else ""))
    print("|---|---|---|---|---|" + ("---|---|---|" if peak else ""))
    for case in rows["cases"]:
        o, r = case["onmt"], case["rnnsearch"]
        floor = ""
        if peak:
            ms = case["macs"] / peak["fma"] * 1000 / args.sentences
            floor = f" {case['decoded_rows']} | {ms:.3f} | {o['median'] / ms:.1f}× |"
        print(f"| batch {case['batch']}, beam 5 | {o['median']:.2f} [{o['min']:.2f}–"
              f"{o['max']:.2f}] ({o['cpu']:.2f}) | {r['median']:.3f} [{r['min']:.3f}–"
              f"{r['max']:.3f}] ({r['cpu']:.3f}) | {o['median'] / r['median']:.1f}× | "
              f"{o['cpu'] / r['cpu']:.1f}× |" + floor)
    print()
    print("command: python tools/bench_opennmt.py " + " ".join(argv or sys.argv[1:]))
    return 0


# ---------------------------------------------------------------------------------------------
# harness: runs in the OpenNMT-py virtualenv


def _onmt_runner(version, checkpoint, batch_size, work):
    import onmt
    base = ["-model", checkpoint, "-src", "dummy", "-output", os.path.join(work, "pred.txt"),
            "-beam_size", "5", "-batch_size", str(batch_size), "-gpu", "-1"]
    if version >= 3:
        from onmt.bin.translate import _get_parser
        from onmt.inference_engine import InferenceEnginePY
        from onmt.utils.parse import ArgumentParser
        opt = _get_parser().parse_args(base)
        ArgumentParser.validate_translate_opts(opt)
        ArgumentParser._get_all_transform_translate(opt)
        ArgumentParser._validate_transforms_opts(opt)
        ArgumentParser.validate_translate_opts_dynamic(opt)
        engine = InferenceEnginePY(opt)

        def run(lines):
            scores, predictions = engine.infer_list(lines)
            return [p[0] for p in predictions]
        return run, onmt.__version__
    from onmt.bin.translate import _get_parser
    from onmt.translate.translator import build_translator
    from onmt.utils.parse import ArgumentParser
    opt = _get_parser().parse_args(base)
    ArgumentParser.validate_translate_opts(opt)
    translator = build_translator(opt, report_score=False)

    def run(lines):
        scores, predictions = translator.translate(
            src=[line.encode("utf-8") for line in lines], batch_size=batch_size,
            batch_type="sents")
        return [p[0] for p in predictions]
    return run, onmt.__version__


def harness(spec_path):
    import time

    import torch
    import rnnsearch
    from rnnsearch.bench.floors import decoded_macs
    from rnnsearch.opennmt_search import translate as opennmt_translate
    from rnnsearch.safetensors_io import read_safetensors
    torch.set_num_threads(1)
    with open(spec_path) as f:
        spec = json.load(f)
    lines = spec["lines"]
    translator = rnnsearch.Translator(spec["model_dir"], intra_threads=1)
    tokens = [line.split() for line in lines]
    tensors = (read_safetensors(os.path.join(spec["model_dir"], "model.safetensors"))[0]
               if spec["floor"] else None)
    result = {"cases": [], "identical": True}
    for batch in (1, 30):
        onmt_run, result["onmt_version"] = _onmt_runner(spec["version"], spec["checkpoint"],
                                                        batch, spec["work"])

        def ours(_lines, batch=batch):
            return [" ".join(r.hypotheses[0]) for r in translator.translate_batch(
                tokens, search="opennmt", opennmt_version=spec["version"],
                batch_size=batch)]
        runs = {"onmt": onmt_run, "rnnsearch": ours}
        outputs = {name: run(lines) for name, run in runs.items()}  # warm-up, checked
        result["identical"] &= outputs["onmt"] == outputs["rnnsearch"]
        times = {name: [] for name in runs}
        for _ in range(spec["repeat"]):
            for name, run in runs.items():
                wall, cpu = time.perf_counter(), time.process_time()
                run(lines)
                times[name].append(((time.perf_counter() - wall) * 1000 / len(lines),
                                    (time.process_time() - cpu) * 1000 / len(lines)))
        case = {"batch": batch}
        if spec["floor"]:   # the work, counted in an untimed run
            stats = {}
            opennmt_translate(translator, tokens, stats=stats, opennmt_version=spec["version"],
                              batch_size=batch)
            case["decoded_rows"] = stats["decoded_rows"]
            case["macs"] = decoded_macs(tensors, [len(translator.source_ids(t)) for t in tokens],
                                        stats["decoded_rows"])
        for name, values in times.items():
            walls = sorted(v[0] for v in values)
            median = statistics.median(walls)
            cpu = min(values, key=lambda v: abs(v[0] - median))[1]
            case[name] = {"median": median, "min": walls[0], "max": walls[-1], "cpu": cpu}
        result["cases"].append(case)
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--harness":
        harness(sys.argv[2])
    else:
        sys.exit(main())
