"""Corpus translation on Ray Data (`pip install "rnnsearch[ray]"`), for corpora larger than
one machine wants to hold or decode.

translate_dataset maps a Ray Dataset's batches through a pool of actors, each holding one
Translator (the model loaded once per actor, its weights file memory-mapped), and keeps
the input order. An actor that dies (a killed process, a lost node) is restarted and its
unfinished batches are retried, up to `max_retries` times. The result is a Dataset, so it
writes as Ray Data writes files (write_json, write_parquet, write_csv, to local disks or
object stores). translate_files reads text files line by line and writes JSON lines;
`rnnsearch translate --ray ADDRESS -i INPUT -o OUTPUT_DIR` runs it from the command line.

On a cluster every node needs rnnsearch installed and the model directory at the same
path (a shared file system), or pass a path every node can read.
"""
from __future__ import annotations

import sys
import warnings
from typing import Any


class TranslateBatch:
    """The Ray Data actor: one Translator per actor process; each call translates one Ray
    task's rows of `column` (raw strings, translated with the model's own tokenizers as
    Translator.translate does) into `output_column`, `batch_size` sentences per engine
    call (Translator.translate's max_batch_size)."""

    def __init__(self, model: str | None, intra_threads: int, compute_type: str, column: str,
                 output_column: str, batch_size: int, options: dict):
        from .translator import Translator
        self.translator = Translator(model, intra_threads=intra_threads,
                                     compute_type=compute_type)
        self.column, self.output_column = column, output_column
        self.options = {"max_batch_size": batch_size, **options}

    def __call__(self, batch: dict) -> dict:
        import numpy as np
        texts = [str(text) for text in batch[self.column]]
        batch[self.output_column] = np.array(self.translator.translate(texts, **self.options),
                                             dtype=object)
        return batch


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def translate_dataset(ds, model: str | None = None, *, column: str = "text",
                      output_column: str = "translation", actors: int = 2,
                      batch_size: int = 64, task_batches: int = 16, intra_threads: int = 1,
                      compute_type: str = "float32", max_retries: int = 3,
                      **options: Any):
    """A Dataset with `output_column` added: the translation of each row's `column`, in
    the input's order. actors: size of the actor pool (each reserves intra_threads CPUs);
    batch_size: sentences per engine call; task_batches: such calls per Ray task (each
    task carries task_batches x batch_size rows to an actor); max_retries: restarts of a
    dead actor and retries of its tasks; options: those of Translator.translate_batch
    (beam_size, ...)."""
    for name, value in (("actors", actors), ("batch_size", batch_size),
                        ("task_batches", task_batches), ("intra_threads", intra_threads)):
        _check_positive(name, value)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
    from ray.data import ActorPoolStrategy

    with warnings.catch_warnings():
        # Ray 2.60 deprecates passing max_restarts this way but names no replacement
        warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated")
        out = ds.map_batches(
            TranslateBatch,
            fn_constructor_kwargs=dict(model=model, intra_threads=intra_threads,
                                       compute_type=compute_type, column=column,
                                       output_column=output_column, batch_size=batch_size,
                                       options=options),
            # Each Ray task costs milliseconds of scheduling and object transfer whatever
            # its size; a task of many Translator calls spreads that cost thin.
            compute=ActorPoolStrategy(size=actors), batch_size=task_batches * batch_size,
            batch_format="numpy", num_cpus=intra_threads,
            max_restarts=max_retries, max_task_retries=max_retries)
    # The actors finish tasks in any order; this dataset's execution puts them back.
    out.context.execution_options.preserve_order = True
    return out


def translate_files(inputs, output_dir: str, model: str | None = None, **options: Any):
    """Translate text files (paths or directories Ray Data reads: local, s3://, ...), one
    sentence per line, empty lines kept; write JSON lines ({"text", "translation"}) into
    output_dir as Ray Data names its files. Options are those of translate_dataset."""
    import ray.data

    # Reading and writing claim no CPU: the actors may hold every CPU of the cluster, and
    # a read or write task waiting for one would wait forever.
    ds = ray.data.read_text(inputs, drop_empty_lines=False, num_cpus=0)
    translate_dataset(ds, model, **options).write_json(output_dir,
                                                       ray_remote_args={"num_cpus": 0})


def connect(address: str) -> None:
    """Join the Ray cluster at `address` ("auto" finds a running one, "ray://host:10001"
    a remote one), or with "local" start a Ray instance on this machine."""
    import ray
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address)


def translate_command(args) -> int:
    """`rnnsearch translate --ray ADDRESS -i INPUT -o OUTPUT_DIR`."""
    import importlib.util
    if importlib.util.find_spec("ray") is None:
        print('rnnsearch translate --ray needs Ray Data: pip install "rnnsearch[ray]"',
              file=sys.stderr)
        return 1
    if args.input in (None, "-") or args.output in (None, "-"):
        raise ValueError("--ray reads -i INPUT (files or a directory) and writes JSON lines "
                         "into -o OUTPUT_DIR; stdin/stdout are not distributed")
    if args.n_best not in (None, 1) or args.with_scores or args.with_alignment or \
            args.plot_attention:
        raise ValueError("--ray writes the best translation only (no --n-best, "
                         "--with-scores, --with-alignment or --plot-attention)")
    connect(args.ray)
    import ray

    from .cli_decoding import decoding_keywords
    cpus = ray.cluster_resources().get("CPU", 0)
    if args.ray_actors * args.threads > cpus:   # the pool would wait for CPUs forever
        raise ValueError(f"--ray-actors {args.ray_actors} x --threads {args.threads} needs "
                         f"{args.ray_actors * args.threads} CPUs; the cluster has {cpus:g}")
    translate_files(args.input, args.output, args.model, actors=args.ray_actors,
                    batch_size=args.batch_size, task_batches=args.ray_task_batches,
                    intra_threads=args.threads,
                    compute_type=args.compute_type, truncate=args.truncate,
                    phrase_table=args.phrase_table,
                    attention_constraint=args.attention_constraint, **decoding_keywords(args))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
