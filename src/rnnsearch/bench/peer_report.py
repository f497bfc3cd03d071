"""The peer benchmark's report (rnnsearch.bench.peers): Markdown tables of the timings, fp32
engines beside fp32 engines, int8 beside int8 and rnnsearch bfloat16 beside rnnsearch fp32,
token agreement with rnnsearch fp32, the floors, and the JSON record."""
from __future__ import annotations

from dataclasses import dataclass, field

from .timing import Case, Timing

BEAM = 5
FP32_ENGINES = ("rnnsearch fp32", "ONNX Runtime", "PyTorch eager", "PyTorch oneDNN")
INT8_ENGINES = ("rnnsearch int8", "ONNX Runtime int8", "PyTorch int8")
BF16_ENGINES = ("rnnsearch bfloat16", "PyTorch bf16 autocast")


@dataclass
class SizeResult:
    size: object                          # peers.Size
    conversion_failure: str | None
    agreement: dict[str, dict[str, float]]
    check_problems: list[str]
    engines: tuple[tuple[str, ...], tuple[str, ...]]   # (fp32 engines, int8 engines) run
    timings: list[tuple[Case, dict[str, Timing]]] = field(default_factory=list)
    floors: dict = field(default_factory=dict)
    bf16_engines: tuple[str, ...] = ()    # bfloat16 engines run (timed against fp32)


def summary(timing: Timing) -> str:
    return f"{timing.median:.2f} [{min(timing.wall):.2f}–{max(timing.wall):.2f}]"


def timing_table(result: SizeResult, engines: tuple[str, ...]) -> str:
    """One row per case and engine; the first engine is the rnnsearch one the others are
    measured against (× = the engine's median time / rnnsearch's, > 1: rnnsearch is
    faster), by wall time and by CPU time (on a busy machine wall time includes waiting for
    a core; CPU time does not, but it adds every thread an engine runs)."""
    ours = engines[0]
    header = ["case", "threads", "engine", "wall ms/sent. median [min–max]",
              "CPU ms/sent.", f"{ours} is", "by CPU time"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for case, times in result.timings:
        for engine in engines:
            timing = times[engine]
            ratios = ["—", "—"] if engine == ours else [
                f"{timing.median / times[ours].median:.2f}×",
                f"{timing.cpu_median / times[ours].cpu_median:.2f}×"]
            cells = [case.label, str(case.threads), engine, summary(timing),
                     f"{timing.cpu_median:.2f}", *ratios]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def agreement_table(result: SizeResult) -> str:
    header = ["engine", "greedy: sentences = rnnsearch fp32", "greedy: tokens =",
              f"beam {BEAM}: sentences ="]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for engine, agree in result.agreement.items():
        cells = [engine, f"{100 * agree['greedy_sentences']:.0f}%",
                 f"{100 * agree['greedy_positions']:.1f}%",
                 f"{100 * agree['beam_sentences']:.0f}%"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rates(measured: dict[str, float]) -> str:
    """'numpy sum 23.1, torch sum 27.9' (per 1e9) from a measurement, without its best."""
    return ", ".join(f"{k} {v / 1e9:.1f}" for k, v in measured.items() if k != "best")


def floors_text(floors: dict, machine: dict, batch: int, length: int) -> str:
    bw, gemm = machine["bandwidth"], machine["sgemm"]
    lines = [
        f"- memory bandwidth floor: decoder weights read per step "
        f"{floors['decoder_step_bytes'] / 1e6:.1f} MB / {bw['best'] / 1e9:.1f} GB/s "
        f"(one core: {rates(bw)}) = "
        f"{floors['step_floor_ms']:.3f} ms/step; rnnsearch fp32 batch 1 greedy "
        f"{floors['step_ms']:.3f} ms/step (sentence time / {length}, encoder included) "
        f"= {100 * floors['step_fraction']:.0f}% of the floor",
        f"- sgemm floor: batch {batch} beam {BEAM} = {floors['beam_flops'] / 1e9:.1f} GFLOP "
        f"/ {gemm['best'] / 1e9:.1f} GFLOP/s (one core: {rates(gemm)}) = "
        f"{floors['beam_floor_ms']:.1f} ms; rnnsearch fp32 {floors['beam_ms']:.1f} ms "
        f"= {100 * floors['beam_fraction']:.0f}% of the floor",
    ]
    if floors["step_fraction"] > 1:
        lines.append("- above 100% of the bandwidth floor: the decoder weights stay (partly) "
                     "in the CPU caches between steps, or rnnsearch streams memory faster than "
                     "the loops measured here")
    if floors["beam_fraction"] > 1:
        lines.append("- above 100% of the sgemm floor: the library sgemm measured here is "
                     "slower than rnnsearch's own kernels on this CPU, or the machine was "
                     "busier while it was measured")
    return "\n".join(lines)


def describe_size(size, sentences: int, batch: int, length: int) -> str:
    enc, dec = size.config["encoder"], size.config["decoder"]
    return (f"{size.name}: {enc['num_layers']}-layer bi{enc['cell'].upper()} "
            f"{enc['hidden_size']}/direction encoder, {size.config['bridge']['type']} bridge, "
            f"{dec['type']} {dec.get('num_layers', 1)}-layer "
            f"{dec['cell'].upper()} {dec['hidden_size']} decoder, "
            f"{size.config['attention']['score']} attention; vocab {size.source_vocab} -> "
            f"{size.target_vocab}; source {size.source_length} tokens, target {length}; "
            f"batch-1 cases over {sentences} sentences, batch cases one call of {batch}")


def print_size(result: SizeResult, args, machine: dict) -> None:
    size = result.size
    print(f"\n## {size.name}\n")
    print(describe_size(size, args.sentences, args.batch_size, args.target_length))
    if result.conversion_failure:
        print(f"\n!!! ONNX CONVERSION FAILED: {result.conversion_failure}\n"
              f"!!! the rnnsearch model directory was written by export_model_dir instead")
    else:
        print("\nrnnsearch model: converted from the ONNX graphs by rnnsearch.convert.onnx")
    fp32, int8 = result.engines
    verdict = f"PASSED ({' = '.join(fp32)})" if not result.check_problems \
        else "FAILED: " + "; ".join(result.check_problems)
    print(f"identity check, greedy and beam {BEAM} on {args.batch_size} sentences: {verdict}")
    print("\nTokens against rnnsearch fp32 on those sentences (int8 and bfloat16 engines are "
          "not expected to be identical; random weights have far more near-ties than a "
          "trained model):\n")
    print(agreement_table(result))
    print("\n### float32\n")
    print(timing_table(result, fp32))
    if int8:
        print("\n### int8\n")
        print(timing_table(result, int8))
    if result.bf16_engines:
        print("\n### bfloat16\n")
        print(timing_table(result, result.bf16_engines + (fp32[0],)))
    print()
    print(floors_text(result.floors, machine, args.batch_size, args.target_length))


def int8_greedy(agreement: dict) -> dict | None:
    """rnnsearch int8's greedy agreement with fp32 (None when int8 was not run)."""
    agree = agreement.get("rnnsearch int8")
    return None if agree is None else {"positions": agree["greedy_positions"],
                                       "sentences": agree["greedy_sentences"],
                                       "common_prefix": agree["greedy_common_prefix"]}


def to_json(results: list[SizeResult], machine: dict, args) -> dict:
    return {
        "machine": machine, "command": args.command, "target_length": args.target_length,
        "repeat": args.repeat,
        "sizes": [{
            "size": r.size.name, "config": r.size.config, "source_vocab": r.size.source_vocab,
            "target_vocab": r.size.target_vocab, "source_length": r.size.source_length,
            "onnx_conversion": "failed: " + r.conversion_failure if r.conversion_failure
            else "ok",
            "identity_check": {"passed": not r.check_problems, "problems": r.check_problems},
            "agreement_with_rnnsearch_fp32": r.agreement,
            "int8_greedy_agreement": int8_greedy(r.agreement),
            "cases": [{"case": c.label, "batch": c.batch, "beam": c.beam, "threads": c.threads,
                       "ms_per_sentence": {e: t.wall for e, t in times.items()},
                       "cpu_ms_per_sentence": {e: t.cpu for e, t in times.items()}}
                      for c, times in r.timings],
            "floors": r.floors,
        } for r in results]}
