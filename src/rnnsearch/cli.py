"""The `rnnsearch` command line: translate, score, convert, inspect, bench."""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys

from . import __version__
from .cli_options import add_compute_type, add_model_and_output
from .errors import EngineError, ModelError
from .lines import line_hypothesis

# the exit status of a process killed by SIGPIPE (128 + 13), what `cat` gives under `| head`
BROKEN_PIPE_STATUS = 141

# the API's argument names as the translate command's flags, for its error messages
_FLAG_NAMES = {"intra_threads": "--threads", "compute_type": "--compute-type",
               "beam_size": "--beam-size", "num_hypotheses": "--n-best",
               "min_decoding_length": "--min-length", "max_decoding_length": "--max-length",
               "length_penalty": "--length-penalty", "coverage_penalty": "--coverage-penalty",
               "suppress_tokens": "--suppress", "truncate=True": "--truncate",
               "replace_unk": "--replace-unk", "phrase_table": "--phrase-table",
               "length_normalization": "--length-normalization",
               "word_penalty": "--word-penalty", "max_length_factor": "--max-length-factor",
               "use_vmap": "--use-vmap"}


def _add_decoding_options(p: argparse.ArgumentParser) -> None:
    # None: the model directory's `decoding` defaults (built in: beam 5, max length 256)
    p.add_argument("--beam-size", type=int, help="beam width; 1 is greedy (default: the "
                                                 "model's, else 5)")
    p.add_argument("--n-best", type=int, help="hypotheses to print per input line")
    p.add_argument("--max-length", type=int, help="maximum output tokens (default: the "
                                                  "model's, else 256)")
    p.add_argument("--min-length", type=int, help="minimum output tokens")
    p.add_argument("--length-penalty", type=float, help="GNMT length penalty alpha")
    p.add_argument("--coverage-penalty", type=float, help="GNMT coverage penalty beta")
    p.add_argument("--normalize-scores", action="store_true", default=None,
                   help="divide scores by length")
    p.add_argument("--truncate", action="store_true",
                   help="cut sources longer than the model allows instead of failing")
    p.add_argument("--attention-constraint", nargs=2, type=int, default=None,
                   metavar=("BACKWARD", "FORWARD"),
                   help="limit each step's attention to [last - BACKWARD, last + FORWARD) "
                        "around the previous step's most attended source position (Deep "
                        "Voice 3, ESPnet's attention constraint; e.g. 1 3)")
    p.add_argument("--suppress", nargs="+", default=None, metavar="TOKEN",
                   help="target tokens never to produce (e.g. <unk>, like OpenNMT-py's "
                        "-ban_unk_token)")
    p.add_argument("--replace-unk", action="store_true", default=None,
                   help="replace <unk> in the output by the source token it attended to most "
                        "(OpenNMT-py's -replace_unk)")
    p.add_argument("--phrase-table", metavar="FILE",
                   help="with --replace-unk: 'source|||target' lines; a source token found "
                        "there is replaced by its target")
    p.add_argument("--use-vmap", action="store_true",
                   help="decode over the target tokens the model directory's vmap.txt maps "
                        "each line's source n-grams to (docs/vmap.md; CTranslate2's use_vmap)")
    p.add_argument("--vmap", metavar="FILE", help="--use-vmap with this map file instead")
    g = p.add_argument_group("Marian's search (docs/convert-marian.md; default: the model's)")
    g.add_argument("--shrinking-beam", action="store_true", default=None,
                   help="a finished hypothesis leaves the beam, which narrows (Marian)")
    g.add_argument("--length-normalization", type=float, metavar="A",
                   help="divide scores by length^A (Marian's --normalize)")
    g.add_argument("--word-penalty", type=float, metavar="W",
                   help="subtract W * length from scores (Marian's --word-penalty)")
    g.add_argument("--max-length-factor", type=float, metavar="F",
                   help="at most F * source length tokens (Marian's --max-length-factor)")


@contextlib.contextmanager
def _in_flag_terms():
    """Argument errors from the API, reworded with the command's flag names (--threads for
    intra_threads); errors about the model's own files keep their field names."""
    try:
        yield
    except ModelError:
        raise
    except (ValueError, TypeError) as e:
        message = str(e)
        for name, flag in _FLAG_NAMES.items():
            message = re.sub(rf"(?<![\w.-]){re.escape(name)}\b", flag, message)
        raise type(e)(message) from e


def _report_unknown(translator, units: list[list[list[str]]], first_line: int, say) -> None:
    """Say (on stderr, through `say`) which input symbols the model does not know (they
    become <unk>)."""
    for offset, line in enumerate(units):
        unknown = [t for unit in line for t in translator.unknown_tokens(unit)]
        if unknown:
            shown = " ".join(repr(u) for u in dict.fromkeys(unknown))
            say(f"rnnsearch: line {first_line + offset}: unknown to the model "
                f"(translated as <unk>): {shown}")


def _format_hypothesis(translator, line, line_results, i: int, with_scores: bool,
                       with_alignment: bool) -> str:
    """The i-th hypothesis of a line (lines.line_hypothesis), with its score before a tab
    and its alignment after ' ||| ' as source-target position pairs (Pharaoh format)."""
    text, score, pairs = line_hypothesis(translator, line, line_results, i, with_scores,
                                         with_alignment)
    if with_alignment:
        text += " ||| " + " ".join(f"{s}-{t}" for s, t in pairs)
    return f"{score:.6f}\t{text}" if with_scores else text


def _marian_lines(translator, line_number: int, line, line_results, n_best: int,
                  output_format: str, kind) -> list[str]:
    """marian-decoder's lines for one input line (--output-format marian|marian-nbest)."""
    from .marian_output import result_lines
    if len(line) != 1:
        raise ValueError("--output-format marian needs a model that translates whole lines "
                         "(not source.per_word)")
    result = line_results[0]
    texts = [translator.detokenize(h) for h in result.hypotheses]
    return result_lines(line_number, texts, result, n_best, output_format == "marian-nbest",
                        kind)


def cmd_translate(args) -> int:
    from . import cli_opennmt
    cli_opennmt.check_arguments(args, build_parser().parse_args(["translate"]))
    if (args.use_vmap or args.vmap) and (args.features or args.search == "opennmt" or
                                         args.ray is not None):
        raise ValueError("--use-vmap and --vmap apply to text lines decoded by rnnsearch's "
                         "search, not to --features, --search opennmt or --ray")
    if args.ray is not None:
        from .distributed import translate_command
        return translate_command(args)
    from .cli_decoding import decoding_keywords
    from .cli_input import InputLines
    from .safetensors_io import atomic_write
    from .translator import Translator

    marian = args.output_format != "plain"
    kind = None
    if args.alignment is not None:
        from .marian_output import parse_alignment
        if not marian:
            raise ValueError("--alignment needs --output-format marian or marian-nbest")
        kind = parse_alignment(args.alignment)
    with _in_flag_terms():
        translator = Translator(args.model, intra_threads=args.threads,
                                compute_type=args.compute_type)
        decoding = translator.decoding_options(num_hypotheses=args.n_best,
                                               **decoding_keywords(args))
        use_vmap = translator.load_vocab_map(args.vmap) if args.vmap else args.use_vmap
    if args.features:
        from .cli_features import translate_feature_files
        output = atomic_write(args.output, "w", encoding="utf-8") \
            if args.output not in (None, "-") else contextlib.nullcontext(sys.stdout)
        with _in_flag_terms(), output as out:
            translate_feature_files(translator, args, decoding, out)
        return 0
    if args.plot_attention:
        from .plot import require_matplotlib
        require_matplotlib()
        os.makedirs(args.plot_attention, exist_ok=True)
    source = InputLines(args.input, args.encoding)
    to_file = args.output not in (None, "-")
    progress, say = None, lambda message: print(message, file=sys.stderr)
    if to_file:
        from tqdm import tqdm
        progress = tqdm(total=source.count(), unit="line", file=sys.stderr, disable=args.quiet)
        # messages go above the bar instead of through it
        say = lambda message: tqdm.write(message, file=sys.stderr)  # noqa: E731
    output = atomic_write(args.output, "w", encoding="utf-8") if to_file else \
        contextlib.nullcontext(sys.stdout)
    start = 0
    with output as out:
        batches = source.batches(args.batch_size)
        if args.search == "opennmt":  # OpenNMT-py batches the whole input its own way
            if args.attention_constraint is not None:
                raise ValueError("--attention-constraint is not an option of OpenNMT-py's "
                                 "search (--search opennmt)")
            lines = [line for batch in batches for line in batch]
            cli_opennmt.translate_lines(translator, lines, args, out)
            batches = []
            if progress is not None:
                progress.update(len(lines))
        # files in --batch-size batches; a pipe or terminal as its lines arrive
        for batch in batches:
            # a line is one token sequence, or one per word for per-word models (G2P)
            units = [translator.split_line(line) for line in batch]
            if not args.quiet:
                _report_unknown(translator, units, start + 1, say)
            with _in_flag_terms():
                results = iter(translator.translate_batch(
                    [u for line in units for u in line], **decoding,
                    return_scores=args.with_scores or marian,
                    return_attention=args.with_alignment or bool(args.plot_attention)
                    or kind is not None, include_eos_attention=marian,
                    truncate=args.truncate, phrase_table=args.phrase_table,
                    attention_constraint=args.attention_constraint, use_vmap=use_vmap,
                    max_batch_size=args.batch_size))   # per-word models: words, not lines
            for offset, line in enumerate(units):
                line_results = [next(results) for _ in line]
                if marian:
                    for text in _marian_lines(translator, start + offset, line, line_results,
                                              decoding["num_hypotheses"],
                                              args.output_format, kind):
                        out.write(text + "\n")
                    continue
                for i in range(decoding["num_hypotheses"]):
                    out.write(_format_hypothesis(translator, line, line_results, i,
                                                 args.with_scores, args.with_alignment) + "\n")
                if args.plot_attention:
                    from .plot import plot_line
                    plot_line(translator, line, line_results, start + offset + 1,
                              args.plot_attention, args.plot_svg)
            out.flush()   # each batch's lines go out before the next batch is read
            start += len(batch)
            if progress is not None:
                progress.update(len(batch))
    if progress is not None:
        progress.close()
    return 0


def cmd_convert(args) -> int:
    from .convert import load_format
    if os.path.lexists(args.output) and not args.force and not (
            os.path.isdir(args.output) and not os.listdir(args.output)):
        raise ValueError(f"{args.output} already exists; pass --force to replace the model "
                         "files in it")
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
    p.add_argument("--force", action="store_true",
                   help="write into OUTPUT even if it exists (its model files are replaced)")
    p.add_argument("--quantize", choices=["none", "int8"], default="none",
                   help="store the matrices as int8 with per-row scales (a quarter of the "
                        "size; decodes as compute_type int8 would)")
    p.set_defaults(func=cmd_convert)
    return p


def cmd_inspect(args) -> int:
    from .inspect_model import describe
    print(describe(args.model))
    return 0


def cmd_serve(args) -> int:
    from .serve.server import run
    return run(args)


def cmd_bench(args) -> int:
    from .bench.runner import run_bench
    return run_bench(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnsearch",
        description="Fast CPU decoding for attention-based RNN encoder-decoder models.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("translate", help="translate lines (stdin to stdout, or files)")
    add_model_and_output(p)
    p.add_argument("-i", "--input", default=None, help="input file (default stdin)")
    p.add_argument("--features", nargs="+", metavar="FILE",
                   help="array sources instead of text lines (models of source.kind "
                        "'features' or 'one_hot'): .npy files of one array [T, F] or several "
                        "[N, T, F], .npz archives of arrays [T, F]; one output line per "
                        "array, in order")
    p.add_argument("--encoding", default="utf-8",
                   help="the input's text encoding, for stdin and -i alike (default utf-8)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="lines per engine call (default 32); from a pipe or a terminal, the "
                        "lines that have arrived, up to this many, so each line is answered "
                        "as soon as it is read")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads")
    add_compute_type(p)
    p.add_argument("--with-scores", action="store_true", help="prefix each line with its score")
    p.add_argument("--with-alignment", action="store_true",
                   help="append ' ||| ' and source-target pairs (each target token aligned "
                        "to the source token it attended to most)")
    p.add_argument("--output-format", choices=["plain", "marian", "marian-nbest"],
                   default="plain", help="marian: lines as marian-decoder prints them; "
                   "marian-nbest: its --n-best lines (line ||| text ||| F0= log-prob ||| "
                   "score), --n-best of them per input line")
    p.add_argument("--alignment", default=None, metavar="TYPE",
                   help="with a marian output format: soft, hard or a threshold (Marian's "
                        "--alignment)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or warnings")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="translate -i on a Ray cluster ('auto', 'ray://HOST:10001', or "
                        "'local' for this machine) into JSON lines files in -o DIR "
                        '(pip install "rnnsearch[ray]")')
    p.add_argument("--ray-actors", type=int, default=2,
                   help="with --ray: translators (actors) in the pool (default 2)")
    p.add_argument("--ray-task-batches", type=int, default=16,
                   help="with --ray: --batch-size calls per Ray task (default 16; fewer "
                        "for small corpora)")
    p.add_argument("--plot-attention", metavar="DIR",
                   help="draw each line's attention (best hypothesis) as DIR/LINE.png "
                        "(needs pip install \"rnnsearch[plot]\")")
    p.add_argument("--plot-svg", action="store_true",
                   help="with --plot-attention: an SVG beside every PNG")
    _add_decoding_options(p)
    from .cli_opennmt import add_arguments as add_opennmt_arguments
    add_opennmt_arguments(p)
    p.set_defaults(func=cmd_translate)

    from .cli_score import add_score_parser
    add_score_parser(sub)

    _add_convert_parser(sub)

    p = sub.add_parser("inspect", help="show a model's architecture, sizes and parameter count")
    p.add_argument("model", help="model directory")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("serve", help="HTTP server with dynamic batching "
                                     '(pip install "rnnsearch[serve]")')
    from .serve.config import add_arguments as add_serve_arguments
    add_serve_arguments(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("bench", help="measure decoding speed (and the PyTorch reference's)")
    from .bench.runner import add_bench_arguments
    add_bench_arguments(p)
    p.set_defaults(func=cmd_bench)

    from .vmap_build import add_parser as add_vmap_parser
    add_vmap_parser(sub)
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


def _discard_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's last flush at exit does
    not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        pass


def _discard_unfinished_writes() -> None:
    """Temporary files a signal caught before their `with` block began (atomic_write
    removes the others itself)."""
    module = sys.modules.get(f"{__package__}.safetensors_io")
    if module is not None:   # not imported: nothing was written
        module.discard_unfinished()


class _Terminated(BaseException):
    """SIGTERM or SIGHUP, raised like KeyboardInterrupt so that files being written are
    removed on the way out (atomic_write) instead of left behind."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _signals_raise():
    def handler(signum, frame):
        raise _Terminated(signum)

    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            try:
                previous[name] = signal.signal(getattr(signal, name), handler)
            except ValueError:   # not the main thread: leave signals alone
                pass
    try:
        yield
    except (KeyboardInterrupt, _Terminated):
        _discard_unfinished_writes()
        raise
    finally:
        for name, old in previous.items():
            signal.signal(getattr(signal, name), old)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if getattr(args, "batch_size", 1) < 1:
        print("rnnsearch: --batch-size must be >= 1", file=sys.stderr)
        return 2
    try:
        with _signals_raise():
            return args.func(args)
    except BrokenPipeError:
        # whoever reads the output has stopped (| head -1): stop quietly, as cat does
        _discard_stdout()
        return BROKEN_PIPE_STATUS
    except (ModelError, ValueError, TypeError, EngineError, OSError, MemoryError,
            ImportError) as e:
        print(f"rnnsearch: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except _Terminated as e:
        return 128 + e.signum
    except Exception as e:   # a bug: still one line, never a traceback
        print(f"rnnsearch: internal error ({type(e).__name__}): {_one_line(e)} -- please "
              "report it", file=sys.stderr)
        return 70


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
