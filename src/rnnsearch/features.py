"""Array sources for Translator.translate_features: feature frames [T, F] (speech frames,
image regions) for `features` models, and one-hot vectors [T, V] for `one_hot` models.
Every array is checked here (container, rank, dtype, width, length, finite values) so the
engine only ever sees float32 frames of the model's width, or valid token ids; errors name
the input (features[i]) and say what the model expects."""
from __future__ import annotations

import numpy as np

from . import source_options

FLOAT_DTYPES = (np.float32, np.float64)


def as_array_list(features) -> list:
    """The sources of one call: a list or tuple of arrays, or a 3-D array [N, T, F] (N
    sources of equal length)."""
    if isinstance(features, np.ndarray):
        if features.ndim == 3:
            return list(features)
        raise TypeError(f"features must be a list of arrays [T, F] (one per source) or one "
                        f"array [N, T, F]; got a single array of shape {list(features.shape)}"
                        + (" (wrap one source in a list)" if features.ndim == 2 else ""))
    if isinstance(features, (str, bytes)) or not isinstance(features, (list, tuple)):
        raise TypeError(f"features must be a list of arrays [T, F], got "
                        f"{type(features).__name__}")
    return list(features)


def _checked(index: int, array, width: int, what: str) -> np.ndarray:
    where = f"features[{index}]"
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{where} is a {type(array).__name__}; expected a NumPy array "
                        f"[T, {width}] of float32 or float64 {what}")
    if array.dtype.type not in FLOAT_DTYPES:
        raise TypeError(f"{where} has dtype {array.dtype}; expected float32 or float64 "
                        f"{what}")
    if array.ndim != 2:
        raise ValueError(f"{where} has shape {list(array.shape)}; expected [T, {width}] "
                         f"(T {what}, {width} values each)")
    if array.shape[1] != width:
        raise ValueError(f"{where} has {array.shape[1]} values per row; this model expects "
                         f"{width}")
    if array.shape[0] == 0:
        raise ValueError(f"{where} is empty (0 rows); this model needs at least one")
    with np.errstate(over="ignore"):   # a float64 beyond float32's range: reported below
        frames = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(frames)
    if not finite.all():
        row = int(np.argmin(finite.all(axis=1)))
        raise ValueError(f"{where} has a NaN or infinite value in row {row}"
                         + (" (or a float64 value beyond float32's range)"
                            if array.dtype == np.float64 else ""))
    return frames


def feature_frames(features, config: dict, truncate: bool) -> list[np.ndarray]:
    """float32 C-contiguous frames [T, F] of a `features` model, checked; sources longer
    than source.max_length are cut (truncate) or refused."""
    enc, src = config["encoder"], config["source"]
    width, limit = src["feature_size"], src["max_length"]
    shortest = source_options.shortest_source(enc)
    out = []
    for index, array in enumerate(as_array_list(features)):
        frames = _checked(index, array, width, "frames")
        if len(frames) > limit:
            if not truncate:
                raise ValueError(f"features[{index}] has {len(frames)} frames; the model "
                                 f"allows {limit} (source.max_length); pass truncate=True "
                                 "to cut it")
            frames = frames[:limit]
        if len(frames) < shortest:
            raise ValueError(f"features[{index}] has {len(frames)} frame(s); this model's "
                             f"encoder subsamples ({describe_subsampling(enc)}) and needs at "
                             f"least {shortest}")
        out.append(frames)
    return out


def one_hot_ids(features, width: int, vocabulary_size: int) -> list[list[int]]:
    """Token ids of one-hot arrays [T, V] (V = source.feature_size): row t is the id of
    its one 1; an all-zero row is id V, the vocabulary's extra last entry, when it has
    one (the converters add it for what the framework read as an all-zero vector)."""
    out = []
    for index, array in enumerate(as_array_list(features)):
        rows = _checked(index, array, width, "one-hot vectors")
        ones, zeros = rows == 1.0, rows == 0.0
        hot = ones.sum(axis=1)
        bad = ~(ones | zeros).all(axis=1) | (hot > 1)
        if vocabulary_size <= width:
            bad |= hot == 0
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"features[{index}] row {row} is not a one-hot vector (one 1, "
                             "the rest 0" + (", or all zeros" if vocabulary_size > width
                                             else "") + ")")
        out.append([int(i) if h else width for i, h in zip(rows.argmax(axis=1), hot)])
    return out


def describe_subsampling(enc: dict) -> str:
    factors = source_options.factors(enc)
    return f"{enc['subsample_mode']} {'x'.join(str(f) for f in factors)}"
