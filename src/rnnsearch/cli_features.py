"""`rnnsearch translate --features FILE...`: array sources (feature frames, or one-hot
vectors) from NumPy files instead of text lines, one output line per array, in order.

A .npy file holds one array [T, F] or several of one length [N, T, F]; a .npz archive
holds arrays [T, F] (lengths may differ), taken in the order they were stored (np.savez's
order). Files are read with allow_pickle=False."""
from __future__ import annotations

import os
import re

import numpy as np

from .errors import ModelError
from .lines import line_hypothesis
from .npy_files import is_npz, read_npy, read_npz
from .safe_files import open_regular


def read_feature_files(paths: list[str]) -> list[tuple[str, np.ndarray]]:
    """(label, array) of every array of the files, in order, labelled FILE, FILE[i] or
    FILE:NAME; ValueError naming the file on a bad one. Only regular files are read, and an
    archive whose arrays would not fit in this machine's memory is refused unread."""
    arrays = []
    for path in paths:
        if not os.path.lexists(path):
            raise ValueError(f"--features: no such file: {path}")
        try:
            with open_regular(path, "--features file") as f:
                arrays.extend(_read(path, f))
        except ModelError as e:
            raise ValueError(str(e)) from e
    return arrays


def _read(path: str, f) -> list[tuple[str, np.ndarray]]:
    try:
        if not is_npz(f):
            return _checked(path, read_npy(f, path), stack=True)
        arrays = read_npz(f, path)
    except ModelError as e:   # corrupt, pickled, or bigger than its bytes or the memory
        raise ValueError(f"--features: {path} is not a NumPy .npy or .npz file of "
                         f"numbers ({e})") from e
    if not arrays:
        raise ValueError(f"--features: {path} holds no arrays")
    return [_checked(f"{path}:{name}", array, stack=False) for name, array in arrays.items()]


def _checked(where: str, array: np.ndarray, stack: bool):
    if array.ndim == 3 and stack:
        return [(f"{where}[{i}]", a) for i, a in enumerate(array)]
    if array.ndim != 2:
        raise ValueError(f"--features: {where} has shape {list(array.shape)}; expected "
                         "[T, F]" + (" or [N, T, F]" if stack else ""))
    return [(where, array)] if stack else (where, array)


def translate_feature_files(translator, args, decoding: dict, out) -> None:
    """Decode the arrays of args.features in batches of args.batch_size and write each
    one's n-best hypotheses (with scores: 'score<TAB>text')."""
    for option, given in (("-i/--input", args.input), ("--with-alignment", args.with_alignment),
                          ("--plot-attention", args.plot_attention),
                          ("--replace-unk", decoding["replace_unk"])):
        if given:
            raise ValueError(f"{option} applies to text input, not --features")
    arrays = read_feature_files(args.features)
    options = {k: v for k, v in decoding.items() if k != "replace_unk"}
    for start in range(0, len(arrays), args.batch_size):
        labels, batch = zip(*arrays[start:start + args.batch_size])
        try:
            results = translator.translate_features(list(batch), **options,
                                                    return_scores=args.with_scores,
                                                    truncate=args.truncate,
                                                    attention_constraint=args.attention_constraint)
        except (ValueError, TypeError) as e:   # features[i] -> the file and array it is
            message = re.sub(r"^features\[(\d+)\]",
                             lambda m: f"--features {labels[int(m.group(1))]}", str(e))
            raise type(e)(message) from e
        for result in results:
            for i in range(decoding["num_hypotheses"]):
                text, score, _ = line_hypothesis(translator, [[]], [result], i,
                                                 args.with_scores)
                out.write(f"{score:.6f}\t{text}\n" if args.with_scores else text + "\n")
        out.flush()
