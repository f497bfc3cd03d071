"""The `rnnsearch` command line: translate, inspect, bench."""
from __future__ import annotations

import argparse
import contextlib
import sys

from .errors import EngineError, ModelError


def _add_decoding_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--beam-size", type=int, default=5, help="beam width; 1 is greedy (default 5)")
    p.add_argument("--n-best", type=int, default=1, help="hypotheses to print per input line")
    p.add_argument("--max-length", type=int, default=256, help="maximum output tokens")
    p.add_argument("--min-length", type=int, default=0, help="minimum output tokens")
    p.add_argument("--length-penalty", type=float, default=0.0, help="GNMT length penalty alpha")
    p.add_argument("--coverage-penalty", type=float, default=0.0, help="GNMT coverage penalty beta")
    p.add_argument("--normalize-scores", action="store_true", help="divide scores by length")
    p.add_argument("--truncate", action="store_true",
                   help="cut sources longer than the model allows instead of failing")
    p.add_argument("--attention-constraint", nargs=2, type=int, default=None,
                   metavar=("BACKWARD", "FORWARD"),
                   help="limit each step's attention to [last - BACKWARD, last + FORWARD) "
                        "around the previous step's most attended source position (Deep "
                        "Voice 3, ESPnet's attention constraint; e.g. 1 3)")
    p.add_argument("--suppress", nargs="+", default=[], metavar="TOKEN",
                   help="target tokens never to produce (e.g. <unk>, like OpenNMT-py's "
                        "-ban_unk_token)")


def _read_lines(path: str | None) -> list[str]:
    if path in (None, "-"):
        return [line.rstrip("\n").rstrip("\r") for line in sys.stdin]
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").rstrip("\r") for line in f]


def _report_unknown(translator, units: list[list[list[str]]], first_line: int) -> None:
    """Say on stderr which input symbols the model does not know (they become <unk>)."""
    for offset, line in enumerate(units):
        unknown = [t for unit in line for t in translator.unknown_tokens(unit)]
        if unknown:
            shown = " ".join(repr(u) for u in dict.fromkeys(unknown))
            print(f"rnnsearch: line {first_line + offset}: unknown to the model "
                  f"(translated as <unk>): {shown}", file=sys.stderr)


def _format_hypothesis(translator, line, line_results, i: int, with_scores: bool,
                       with_alignment: bool) -> str:
    """The i-th hypothesis of a line (of each of its words for per-word models, joined;
    their scores summed); empty with score -inf when the beam has fewer. Alignments are
    appended after ' ||| ' as source-target position pairs (Pharaoh format, positions
    counted over the whole line)."""
    texts, score, pairs, src_offset, tgt_offset = [], 0.0, [], 0, 0
    for unit, result in zip(line, line_results):
        if i < len(result.hypotheses):
            texts.append(translator.detokenize(result.hypotheses[i]))
            if with_scores:
                score += result.scores[i]
            if with_alignment:
                pairs += [f"{src_offset + s}-{tgt_offset + t}" for s, t in
                          translator.hard_alignment(result.attention[i], len(unit))]
                tgt_offset += len(result.hypotheses[i])
        else:
            texts.append("")
            score = float("-inf")
        src_offset += len(unit)
    text = translator.join_words(texts)
    if with_alignment:
        text += " ||| " + " ".join(pairs)
    return f"{score:.6f}\t{text}" if with_scores else text


def cmd_translate(args) -> int:
    from .safetensors_io import atomic_write
    from .translator import Translator

    translator = Translator(args.model, intra_threads=args.threads,
                            compute_type=args.compute_type)
    lines = _read_lines(args.input)
    to_file = args.output not in (None, "-")
    progress = None
    if to_file:
        from tqdm import tqdm
        progress = tqdm(total=len(lines), unit="line", file=sys.stderr, disable=args.quiet)
    output = atomic_write(args.output, "w", encoding="utf-8") if to_file else \
        contextlib.nullcontext(sys.stdout)
    with output as out:
        for start in range(0, len(lines), args.batch_size):
            batch = lines[start:start + args.batch_size]
            # a line is one token sequence, or one per word for per-word models (G2P)
            units = [translator.split_line(line) for line in batch]
            if not args.quiet:
                _report_unknown(translator, units, first_line=start + 1)
            results = iter(translator.translate_batch(
                [u for line in units for u in line], beam_size=args.beam_size,
                num_hypotheses=args.n_best, max_decoding_length=args.max_length,
                min_decoding_length=args.min_length, length_penalty=args.length_penalty,
                coverage_penalty=args.coverage_penalty, normalize_scores=args.normalize_scores,
                return_scores=args.with_scores, return_attention=args.with_alignment,
                truncate=args.truncate,
                suppress_tokens=args.suppress,
                attention_constraint=args.attention_constraint))
            for line in units:
                line_results = [next(results) for _ in line]
                for i in range(args.n_best):
                    out.write(_format_hypothesis(translator, line, line_results, i,
                                                 args.with_scores, args.with_alignment) + "\n")
            if progress is not None:
                progress.update(len(batch))
    if progress is not None:
        progress.close()
    return 0


def cmd_convert(args) -> int:
    from .convert import load_format
    load_format(args.source_format).convert(args)
    if args.quantize == "int8":
        from .quantize import quantize_model_dir
        quantize_model_dir(args.output, args.output)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _add_convert_parser(sub) -> None:
    from .convert import FORMATS, available_formats
    formats = available_formats()
    listing = "\n".join(f"  {name:<11} {desc}" for name, desc in formats.items())
    p = sub.add_parser(
        "convert", help="convert a framework export into a model directory",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert a framework export into an rnnsearch model directory.\n\n"
                    "formats:\n" + listing,
        epilog="Run 'rnnsearch convert --from FORMAT --help' for a format's own options.")
    p.add_argument("--from", dest="source_format", required=True, choices=sorted(FORMATS),
                   help="the format of the input")
    p.add_argument("-o", "--output", required=True, help="model directory to write")
    p.add_argument("--quantize", choices=["none", "int8"], default="none",
                   help="store the matrices as int8 with per-row scales (a quarter of the "
                        "size; decodes as compute_type int8 would)")
    p.set_defaults(func=cmd_convert)
    return p


def cmd_inspect(args) -> int:
    from .inspect_model import describe
    print(describe(args.model))
    return 0


def cmd_bench(args) -> int:
    from .bench.runner import run_bench
    return run_bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnsearch",
        description="Fast CPU decoding for attention-based RNN encoder-decoder models.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("translate", help="translate lines (stdin to stdout, or files)")
    p.add_argument("-m", "--model", default=None,
                   help="model directory (default: the embedded English G2P model)")
    p.add_argument("-i", "--input", default=None, help="input file (default stdin)")
    p.add_argument("-o", "--output", default=None,
                   help="output file, written completely or not at all (default stdout)")
    p.add_argument("--batch-size", type=int, default=32, help="sentences per engine call")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads")
    p.add_argument("--compute-type", default="float32", choices=["float32", "int8"],
                   help="int8 quantizes the weights at load (faster, slightly less exact)")
    p.add_argument("--with-scores", action="store_true", help="prefix each line with its score")
    p.add_argument("--with-alignment", action="store_true",
                   help="append ' ||| ' and source-target pairs (each target token aligned "
                        "to the source token it attended to most)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or warnings")
    _add_decoding_options(p)
    p.set_defaults(func=cmd_translate)

    _add_convert_parser(sub)

    p = sub.add_parser("inspect", help="show a model's architecture, sizes and parameter count")
    p.add_argument("model", help="model directory")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("bench", help="measure decoding speed (and the PyTorch reference's)")
    from .bench.runner import add_bench_arguments
    add_bench_arguments(p)
    p.set_defaults(func=cmd_bench)
    return parser


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Two passes for `convert`: the chosen format adds its own options."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["convert"]:
        fmt = next((a.split("=", 1)[1] for a in argv if a.startswith("--from=")), None)
        if fmt is None and "--from" in argv and argv.index("--from") + 1 < len(argv):
            fmt = argv[argv.index("--from") + 1]
        from .convert import FORMATS, load_format
        if fmt in FORMATS:
            convert_parser = parser._subparsers._group_actions[0].choices["convert"]
            load_format(fmt).add_arguments(convert_parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if getattr(args, "batch_size", 1) < 1:
        print("rnnsearch: --batch-size must be >= 1", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except (ModelError, ValueError, TypeError, EngineError, OSError, MemoryError) as e:
        print(f"rnnsearch: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
