"""rnnsearch against Marian (pymarian) on Marian's own RNN models, one thread each.

    python tools/bench_marian.py --marian-python /tmp/marian-venv/bin/python
    python tools/bench_marian.py --marian-python ... --sizes toy --repeat 3   # quicker

For each size a Marian s2s model (--type s2s: bi-GRU encoder, conditional GRU decoder,
deep output) is made by pymarian's own trainer (one update from Marian's random
initialisation, so the .npz is exactly what Marian writes) and its output layer is scaled up
so that the next-token distributions are peaked like a trained model's (with Marian's
initial weights every output is nearly uniform and nothing would end before the length
limit). rnnsearch converts that .npz (`rnnsearch convert --from marian`).

Sizes: toy (dim-emb 64, dim-rnn 128, vocabularies of 1,000) and realistic (dim-emb 512,
dim-rnn 1024, vocabularies of 32,000, the WMT17 Edinburgh systems' shape). Sources: random
sentences of 20 tokens, all the same length, so that Marian's --max-length-factor (which
counts the longest source of a mini-batch) gives every sentence the same limit.

Each engine runs in a worker process of its own (pymarian lives in its own virtualenv),
warmed up, with OMP/MKL/OpenBLAS threads 1, pymarian --cpu-threads 1, rnnsearch
intra_threads 1. Both decode with Marian's search: --beam-size 5 --normalize 0.6
--max-length-factor 3 (rnnsearch: the shrinking beam with the same options). Cases: batch 1
(one sentence per mini-batch; rnnsearch one translate_batch call per sentence) and batch 32
(one mini-batch of 32). The engines alternate within every repetition; the table gives the
median [min-max] wall time per sentence and the worker's CPU time per sentence. Outputs must
be identical (the best hypothesis's tokens) to pymarian's with one sentence per mini-batch:
Marian's batched arithmetic differs from its one-by-one arithmetic, so its own batch-32
output can take the other side of a near tie (the report counts those), while rnnsearch's
batches compute exactly what single sentences do.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {"toy": dict(emb=64, rnn=128, vocab=1000), "realistic": dict(emb=512, rnn=1024,
                                                                       vocab=32000)}
BEAM, NORMALIZE, LENGTH_FACTOR, SOURCE_LENGTH = 5, 0.6, 3.0, 20
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


# --------------------------------------------------------------------------- workers

def _make_model(work: str, emb: int, rnn: int, vocab: int, scale: float) -> None:
    """(in the pymarian venv) A Marian s2s model of this size: one training update from
    Marian's initialisation, then the output layer scaled by `scale`."""
    import numpy as np
    import pymarian

    words = [f"w{i}" for i in range(vocab - 2)]
    vocab_path = os.path.join(work, "vocab.yml")
    with open(vocab_path, "w") as f:
        f.write('"</s>": 0\n"<unk>": 1\n')
        for i, word in enumerate(words):
            f.write(f"{word}: {i + 2}\n")
    rng = random.Random(0)
    with open(os.path.join(work, "train.src"), "w") as s, \
            open(os.path.join(work, "train.tgt"), "w") as t:
        for _ in range(64):
            s.write(" ".join(rng.choice(words) for _ in range(10)) + "\n")
            t.write(" ".join(rng.choice(words) for _ in range(10)) + "\n")
    model = os.path.join(work, "model.npz")
    pymarian.Trainer(
        f"--type s2s --model {model} --train-sets {work}/train.src {work}/train.tgt "
        f"--vocabs {vocab_path} {vocab_path} --dim-vocabs {vocab} {vocab} --dim-emb {emb} "
        f"--dim-rnn {rnn} --after 1u --mini-batch 16 --cpu-threads 1 --seed 1 --quiet "
        f"--workspace 2048").train()
    with np.load(model) as z:
        items = {k: z[k] for k in z.files}
    items["decoder_ff_logit_l2_Wt"] = items["decoder_ff_logit_l2_Wt"] * np.float32(scale)
    np.savez(model, **items)
    for name in os.listdir(work):
        if name.startswith("model.npz.") or name.startswith("train."):
            os.remove(os.path.join(work, name))


class MarianWorker:
    def __init__(self, work: str):
        import pymarian
        vocab = os.path.join(work, "vocab.yml")
        common = (f"--models {work}/model.npz --vocabs {vocab} {vocab} --cpu-threads 1 "
                  f"--beam-size {BEAM} --normalize {NORMALIZE} --max-length-factor "
                  f"{LENGTH_FACTOR} --maxi-batch 1 --workspace 2048 --quiet")
        self.translators = {batch: pymarian.Translator(f"{common} --mini-batch {batch}")
                            for batch in (1, 32)}

    def translate(self, sentences: list[str], batch: int) -> list[str]:
        return self.translators[batch].translate(sentences)


class RnnsearchWorker:
    def __init__(self, work: str):
        import rnnsearch
        self.translator = rnnsearch.Translator(os.path.join(work, "rnnsearch"), intra_threads=1)

    def translate(self, sentences: list[str], batch: int) -> list[str]:
        outputs = []
        for start in range(0, len(sentences), batch):
            chunk = [s.split() for s in sentences[start:start + batch]]
            results = self.translator.translate_batch(
                chunk, beam_size=BEAM, shrinking_beam=True, length_normalization=NORMALIZE,
                max_length_factor=LENGTH_FACTOR, max_decoding_length=1000)
            outputs += [" ".join(r.hypotheses[0]) for r in results]
        return outputs


def worker_main(kind: str, work: str) -> None:
    """Answer one JSON request per stdin line with outputs, wall and CPU seconds."""
    worker = MarianWorker(work) if kind == "marian" else RnnsearchWorker(work)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        cpu, wall = time.process_time(), time.perf_counter()
        outputs = worker.translate(request["sentences"], request["batch"])
        print(json.dumps({"outputs": outputs, "wall": time.perf_counter() - wall,
                          "cpu": time.process_time() - cpu}), flush=True)


# ---------------------------------------------------------------------------- driver

class Worker:
    def __init__(self, python: str, kind: str, work: str):
        env = dict(os.environ, **THREAD_ENV)
        self.process = subprocess.Popen([python, os.path.abspath(__file__), "--worker", kind,
                                         "--work", work], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)
        self._read()

    def _read(self) -> dict:
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise SystemExit("a worker died (see its messages above)")
            if line.startswith("{"):
                return json.loads(line)

    def run(self, sentences: list[str], batch: int) -> dict:
        self.process.stdin.write(json.dumps({"sentences": sentences, "batch": batch}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def _sources(vocab: int, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(f"w{rng.randrange(vocab - 2)}" for _ in range(SOURCE_LENGTH))
            for _ in range(count)]


def _summary(values: list[float]) -> str:
    ms = [1000 * v for v in values]
    return f"{statistics.median(ms):.2f} [{min(ms):.2f}-{max(ms):.2f}]"


def bench_size(name: str, args) -> list[str]:
    size = SIZES[name]
    work = os.path.join(args.work, name)
    if not os.path.exists(os.path.join(work, "model.npz")):
        os.makedirs(work, exist_ok=True)
        subprocess.run([args.marian_python, os.path.abspath(__file__), "--make", "--work", work,
                        "--emb", str(size["emb"]), "--rnn", str(size["rnn"]), "--vocab",
                        str(size["vocab"]), "--scale", str(args.scale)], check=True,
                       env=dict(os.environ, **THREAD_ENV))
    shutil.rmtree(os.path.join(work, "rnnsearch"), ignore_errors=True)
    subprocess.run([sys.executable, "-m", "rnnsearch", "convert", "--from", "marian",
                    os.path.join(work, "model.npz"), "--vocabs", os.path.join(work, "vocab.yml"),
                    os.path.join(work, "vocab.yml"), "-o", os.path.join(work, "rnnsearch")],
                   check=True)
    engines = {"pymarian": Worker(args.marian_python, "marian", work),
               "rnnsearch": Worker(sys.executable, "rnnsearch", work)}
    rows = []
    try:
        for batch, count in ((1, args.batch1_sentences), (32, 32)):
            sentences = _sources(size["vocab"], count, seed=batch)
            for engine in engines.values():  # warm up
                engine.run(sentences[:batch], batch)
            times = {k: [] for k in engines}
            cpus = {k: [] for k in engines}
            outputs = {}
            for _ in range(args.repeat):
                for key, engine in engines.items():
                    reply = engine.run(sentences, batch)
                    times[key].append(reply["wall"] / count)
                    cpus[key].append(reply["cpu"] / count)
                    outputs[key] = reply["outputs"]
            # Marian's batched arithmetic is not its one-by-one arithmetic (a near tie can
            # go the other way in a mini-batch of 32); rnnsearch's is, so its outputs are
            # checked against pymarian's one sentence per mini-batch
            reference = engines["pymarian"].run(sentences, 1)["outputs"]
            differ = sum(a != b for a, b in zip(reference, outputs["rnnsearch"]))
            marian_batch = sum(a != b for a, b in zip(reference, outputs["pymarian"]))
            lengths = statistics.mean(len(o.split()) for o in outputs["rnnsearch"])
            speedup = statistics.median(times["pymarian"]) / statistics.median(times["rnnsearch"])
            rows.append(f"| {name} | {batch} | {BEAM} | {_summary(times['pymarian'])} | "
                        f"{_summary(times['rnnsearch'])} | {speedup:.1f}× | "
                        f"{1000 * statistics.median(cpus['pymarian']):.2f} / "
                        f"{1000 * statistics.median(cpus['rnnsearch']):.2f} | {lengths:.1f} | "
                        f"{'identical' if not differ else f'{differ} of {count} differ'}"
                        + (f" (pymarian's own batch-{batch} output differs from its batch-1 "
                           f"output on {marian_batch})" if marian_batch else "") + " |")
            print(rows[-1], flush=True)
    finally:
        for engine in engines.values():
            engine.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--marian-python", help="python of a virtualenv with pymarian")
    parser.add_argument("--sizes", default="toy,realistic")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch1-sentences", type=int, default=8)
    parser.add_argument("--scale", type=float, default=30.0,
                        help="factor on Marian's initial output layer (peaked outputs)")
    parser.add_argument("--work", help="keep the models here (default: a temporary directory)")
    # internal: the worker processes and the model maker
    parser.add_argument("--worker", choices=["marian", "rnnsearch"], help=argparse.SUPPRESS)
    parser.add_argument("--make", action="store_true", help=argparse.SUPPRESS)
    for key in ("emb", "rnn", "vocab"):
        parser.add_argument(f"--{key}", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_main(args.worker, args.work)
    if args.make:
        return _make_model(args.work, args.emb, args.rnn, args.vocab, args.scale)
    if not args.marian_python:
        parser.error("--marian-python is required (a virtualenv with pymarian)")
    temporary = args.work is None
    args.work = args.work or tempfile.mkdtemp(prefix="bench-marian-")
    header = ["| size | batch | beam | pymarian ms/sentence | rnnsearch ms/sentence | × | "
              "CPU ms/sentence (pymarian / rnnsearch) | output tokens | outputs |",
              "|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(header), flush=True)
    rows = []
    try:
        for name in args.sizes.split(","):
            rows += bench_size(name, args)
    finally:
        if temporary:
            shutil.rmtree(args.work, ignore_errors=True)
    print("\n" + "\n".join(header + rows))
    print(f"\n`python tools/bench_marian.py {' '.join(sys.argv[1:])}`")


if __name__ == "__main__":
    main()
