"""Fuzz the model loaders and converter input parsers (targets: tools/fuzz/targets.py).

    python tools/fuzz_run.py list
    python tools/fuzz_run.py run TARGET --seconds 600            # atheris if installed
    python tools/fuzz_run.py run TARGET --engine mutate --iterations 300 --seed 0
    python tools/fuzz_run.py replay TARGET FILE...               # e.g. a crash artifact

`run` starts from the committed seeds (tools/fuzz/corpus/TARGET) and regression inputs
(tools/fuzz/regressions/TARGET). With atheris (pip install atheris; coverage-guided,
libFuzzer) new interesting inputs go to --work (not committed); without it, or with
--engine mutate, a deterministic pure-Python mutator runs (tools/fuzz/mutate.py). A
finding is an exception outside the documented set (ModelError, EngineError, ValueError,
TypeError), a crash, an input taking longer than --timeout seconds, or the process
growing past --rss-limit-mb; the input is saved under --artifacts and the exit status is
non-zero. Findings, once fixed, are copied into tools/fuzz/regressions/TARGET.
"""
from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# the installed rnnsearch first (its compiled engine); the source tree only if none is
sys.path.append(os.path.join(os.path.dirname(HERE), "src"))
os.environ.setdefault("KERAS_BACKEND", "torch")


class Finding(Exception):
    pass


def _import_all() -> None:
    """Import every rnnsearch module up front (atheris instruments what is imported in its
    context; converters otherwise import their modules lazily)."""
    import importlib
    import pkgutil

    import rnnsearch
    for module in pkgutil.walk_packages(rnnsearch.__path__, "rnnsearch."):
        if module.name.startswith(("rnnsearch.bench", "rnnsearch.reference")) or \
                module.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(module.name)
        except ImportError:   # an optional dependency missing: its target will say so
            pass


def _rss_watchdog(limit_mb: int, artifacts: str, current: dict) -> None:
    """Like libFuzzer's -rss_limit_mb: a memory blow-up is a finding, not a swapping box."""
    def watch():
        while True:
            try:
                with open("/proc/self/statm") as f:
                    rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
            except OSError:
                return
            if rss > limit_mb:
                path = _save(artifacts, "oom", current.get("data", b""))
                print(f"FINDING: memory blow-up ({rss} MB > {limit_mb} MB); input saved to "
                      f"{path}", file=sys.stderr, flush=True)
                os._exit(3)
            time.sleep(0.1)
    threading.Thread(target=watch, daemon=True).start()


def _save(folder: str, kind: str, data: bytes) -> str:
    import hashlib
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{kind}-{hashlib.sha1(data).hexdigest()[:16]}")
    with open(path, "wb") as f:
        f.write(data)
    return path


def run_mutate(target, seeds, args, stats) -> int:
    from fuzz.mutate import mutate, structured
    from fuzz.targets import check
    rng = random.Random(args.seed)
    pool = [data for _, data in seeds]
    # first the seeds and their structured corruptions, then random mutants
    planned = pool + [bad for data in pool for bad in structured(data)]
    current = {}
    _rss_watchdog(args.rss_limit_mb, args.artifacts, current)

    def on_alarm(signum, frame):
        raise Finding(f"input took more than {args.timeout} s")
    signal.signal(signal.SIGALRM, on_alarm)
    deadline = time.monotonic() + args.seconds if args.seconds else None
    inputs = iter(planned)
    count = 0
    guarded = {}
    while True:
        if args.iterations is not None and count >= args.iterations + len(planned):
            break
        if deadline is not None and time.monotonic() > deadline:
            break
        data = next(inputs, None)
        if data is None:
            data = mutate(rng.choice(pool), rng, pool)
        current["data"] = data
        signal.alarm(args.timeout)
        try:
            stats[check(target, data, guarded)] += 1
        except Exception as e:
            signal.alarm(0)
            kind = "timeout" if isinstance(e, Finding) else "crash"
            path = _save(args.artifacts, kind, data)
            traceback.print_exc()
            print(f"FINDING: {type(e).__name__}: {e}; input saved to {path}", file=sys.stderr)
            return 1
        finally:
            signal.alarm(0)
        count += 1
        if count % 500 == 0:
            print(f"#{count} {dict(stats)}", file=sys.stderr, flush=True)
    print(f"done: {count} executions, {dict(stats)}", file=sys.stderr)
    for where, what in sorted(guarded.items()):
        print(f"guarded at {where}: {what}", file=sys.stderr)
    return 0


def run_atheris(target, seeds, args, stats) -> int:
    import atheris
    with atheris.instrument_imports(include=["rnnsearch"]):
        _import_all()
    from fuzz.targets import check

    count = [0]

    def one_input(data: bytes) -> None:
        stats[check(target, data)] += 1
        count[0] += 1
        if count[0] % 2000 == 0:
            print(f"#{count[0]} {dict(stats)}", file=sys.stderr, flush=True)

    work = os.path.join(args.work, target.name)
    os.makedirs(work, exist_ok=True)
    os.makedirs(args.artifacts, exist_ok=True)
    folders = [work] + [os.path.dirname(p) for p, _ in seeds[:1]]
    regressions = os.path.join(HERE, "fuzz", "regressions", target.name)
    if os.path.isdir(regressions):
        folders.append(regressions)
    longest = max((len(d) for _, d in seeds), default=4096)
    flags = [sys.argv[0], f"-max_total_time={args.seconds or 60}", f"-timeout={args.timeout}",
             f"-rss_limit_mb={args.rss_limit_mb}", f"-max_len={max(4096, 2 * longest)}",
             f"-artifact_prefix={args.artifacts.rstrip('/')}/", "-print_final_stats=1"]
    if args.seed is not None:
        flags.append(f"-seed={args.seed + 1}")
    dictionary = os.path.join(HERE, "fuzz", "dicts", f"{target.name}.dict")
    if os.path.isfile(dictionary):
        flags.append(f"-dict={dictionary}")
    atheris.Setup(flags + folders, one_input)
    atheris.Fuzz()   # exits the process when done
    return 0


def main(argv=None) -> int:
    from fuzz.targets import TARGETS, check, make, seeds
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the targets")
    run = sub.add_parser("run", help="fuzz one target")
    run.add_argument("target", choices=sorted(TARGETS))
    run.add_argument("--engine", choices=("auto", "atheris", "mutate"), default="auto")
    run.add_argument("--seconds", type=float, default=None, help="time budget")
    run.add_argument("--iterations", type=int, default=None,
                     help="mutate: random mutants after the seeds and their structured "
                          "corruptions (default: until --seconds)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--timeout", type=int, default=30, help="seconds per input")
    run.add_argument("--rss-limit-mb", type=int, default=6144)
    tmp = tempfile.gettempdir()
    run.add_argument("--work", default=os.path.join(tmp, "rnnsearch-fuzz-corpus"))
    run.add_argument("--artifacts", default=os.path.join(tmp, "rnnsearch-fuzz-findings"))
    replay = sub.add_parser("replay", help="run inputs once and report how each ends")
    replay.add_argument("target", choices=sorted(TARGETS))
    replay.add_argument("files", nargs="+")
    args = ap.parse_args(argv)

    if args.command == "list":
        for name, (_, fuzzed, description) in TARGETS.items():
            print(f"{name:<20} {description}")
        return 0
    # converters try native readers in a child first (convert/common/read_check.py); the
    # fuzz inputs are small, so a child still reading after a few seconds is a hang, and
    # it must be stopped well before this driver's own --timeout calls it a finding
    os.environ.setdefault("RNNSEARCH_READ_TIMEOUT",
                          str(max(1, min(5, getattr(args, "timeout", 30) // 3))))
    target = make(args.target)
    stats = collections.Counter()
    try:
        if args.command == "replay":
            status = 0
            for path in args.files:
                with open(path, "rb") as f:
                    data = f.read()
                try:
                    outcome = check(target, data)
                except Exception:
                    traceback.print_exc()
                    outcome, status = "FINDING", 1
                print(f"{outcome:<8} {path}")
            return status
        found = seeds(args.target)
        if not found:
            print(f"no seeds for {args.target}: run tools/fuzz/make_corpus.py", file=sys.stderr)
            return 2
        engine = args.engine
        if engine == "auto":
            try:
                import atheris  # noqa: F401
                engine = "atheris"
            except ImportError:
                engine = "mutate"
        if engine == "mutate" and args.seconds is None and args.iterations is None:
            args.iterations = 200
        print(f"fuzzing {args.target} with {engine}", file=sys.stderr)
        return (run_atheris if engine == "atheris" else run_mutate)(target, found, args, stats)
    finally:
        target.close()


if __name__ == "__main__":
    sys.exit(main())
