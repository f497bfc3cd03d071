"""Speed of the stateful attention types at the NMT benchmark size (issue 14): rnnsearch
with location-aware (and coverage) attention against the PyTorch reference's beam search
(rnnsearch.reference.search: every live hypothesis of a sentence as one batch, PyTorch
eager, as a PyTorch user would write it), and the cost of a stateful decoder step against
the global-attention step of the same sizes.

    python tools/bench_stateful_attention.py [--sentences 4] [--repeat 3] [--threads 1]

Every model is random, of the `nmt` size of `rnnsearch bench` (32k vocabularies, embedding
512, 2-layer bidirectional LSTM encoder of 512, 2-layer LSTM luong decoder of 1024 with
input feeding) with additive attention of 512 (global, location-aware, coverage);
location-aware attention has ESPnet's default convolution (10 channels, kernel 201).
Every case forces the target length (min = max decoding length); engines alternate within
each repetition; medians are reported. Prints a Markdown table.

--floor (one thread) measures this core's FMA peak and streaming read rate first
(tools/cpu_peak.py) and adds each case's floor (rnnsearch.bench.floors.search_floors:
every matrix product at the FMA peak, and per step the decoder weights the L3 cache cannot
keep, or all of them, read at the streaming rate) as tokens/s, and PyTorch's time over them:
the most any engine could be faster than PyTorch on this machine in that run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from rnnsearch.bench.floors import encoder_layers, search_floors
from rnnsearch.bench.runner import time_rnnsearch as time_engine
from rnnsearch.bench.sources import random_sources
from rnnsearch.random_model import sized_config, write_random_model
from rnnsearch.safetensors_io import read_safetensors
from rnnsearch.translator import Translator

ATTENTIONS = {
    "global": {"type": "global"},
    "location": {"type": "location", "location": {"channels": 10, "kernel_size": 201}},
    "coverage": {"type": "coverage", "coverage": {"initial": "uniform"}},
}
CASES = {"b1-greedy": (1, 1), "b1-beam5": (1, 5), "b32-beam5": (32, 5)}


def nmt_config(attention: dict) -> tuple[dict, int, int]:
    """`rnnsearch bench --size nmt`'s model with additive attention of the given type."""
    config, src, tgt = sized_config("nmt")
    config["attention"] = {"score": "additive", "size": 512, "scaling": 2.0, **attention}
    return config, src, tgt


def time_torch(reference, sources, batch, beam, length):
    import torch
    from rnnsearch.reference import search
    model, bos, eos = reference
    start = time.perf_counter()
    with torch.inference_mode():
        search.translate_batch(model, sources, bos, eos, beam_size=beam,
                               min_decoding_length=length, max_decoding_length=length)
    return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sentences", type=int, default=4, help="sentences of the batch-1 cases")
    p.add_argument("--source-length", type=int, default=25)
    p.add_argument("--target-length", type=int, default=30)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    p.add_argument("--floor", action="store_true",
                   help="add the one-core floor of each case (one thread only)")
    args = p.parse_args()
    if args.floor and args.threads != 1:
        p.error("--floor is a one-core bound: use it with --threads 1")
    peak = None
    if args.floor:
        from cpu_peak import describe, measure   # tools/, this script's directory
        peak = measure(3)
    cases = args.cases.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        engines, references, tensors = {}, {}, {}
        for name, attention in ATTENTIONS.items():
            path = os.path.join(tmp, name)
            config, src, tgt = nmt_config(attention)
            write_random_model(path, config, src, tgt)
            engines[name] = Translator(path, intra_threads=args.threads)
            tensors[name] = read_safetensors(os.path.join(path, "model.safetensors"))[0]
            if not args.no_torch and name != "global":
                import torch
                from rnnsearch.reference import load_model_dir
                torch.set_num_threads(args.threads)
                references[name] = load_model_dir(path)
        vocab = len(engines["global"].source_vocab)
        rows = []
        for case in cases:
            batch, beam = CASES[case]
            count = args.sentences if batch == 1 else 32
            sources = random_sources(vocab, count, args.source_length)
            times = {}
            for _ in range(args.repeat):
                for name, translator in engines.items():
                    times.setdefault(name, []).append(
                        time_engine(translator, sources, batch, beam, args.target_length))
                for name, reference in references.items():
                    if batch == 1:  # the reference decodes one sentence at a time anyway
                        times.setdefault(f"torch-{name}", []).append(
                            time_torch(reference, sources, batch, beam, args.target_length))
            medians = {k: statistics.median(v) for k, v in times.items()}
            tokens = count * args.target_length
            for name in ATTENTIONS:
                if name == "global":
                    continue
                step = medians[name] / medians["global"]
                torch_time = medians.get(f"torch-{name}")
                floor = None
                if peak:
                    layers = encoder_layers(tensors[name])
                    floor = [count / batch * seconds for seconds in search_floors(
                        tensors[name], [args.source_length] * layers, args.source_length,
                        batch, beam, args.target_length, peak["read"], peak["fma"])]
                rows.append((case, name, tokens / medians[name], tokens / medians["global"],
                             step, None if torch_time is None else torch_time / medians[name],
                             None if floor is None else [tokens / f for f in floor],
                             None if torch_time is None or not floor
                             else [torch_time / f for f in floor]))
    print(f"command: {' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:])}")
    print(f"threads {args.threads}; source length {args.source_length}; target length "
          f"{args.target_length}; median of {args.repeat}")
    if peak:
        print(describe(peak))
    print()
    print("| case | attention | tokens/s | global tokens/s | step vs global | vs PyTorch |"
          + (" floor tokens/s: L3 keeps / streamed | PyTorch ÷ floor |" if peak else ""))
    print("|---|---|---:|---:|---:|---:|" + ("---:|---:|" if peak else ""))
    for case, name, speed, global_speed, step, ratio, floor_speed, beyond in rows:
        versus = "—" if ratio is None else f"{ratio:.1f}×"
        line = f"| {case} | {name} | {speed:.0f} | {global_speed:.0f} | {step:.2f}× | {versus} |"
        if peak:
            line += (f" {floor_speed[0]:.0f} / {floor_speed[1]:.0f} | "
                     + ("—" if beyond is None else f"{beyond[0]:.1f}× / {beyond[1]:.1f}×") + " |")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
