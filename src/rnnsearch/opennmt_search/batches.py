"""How onmt_translate cuts its input into batches, and what a batch decides for its sentences.

OpenNMT-py's batches are not neutral: the attention of a copy model spans the batch's longest
source, -max_length_ratio caps the length by it (3.x), and its beam search reads some
per-sentence values across the batch. So the same batches, in the same order, are rebuilt
here:

- 3.x (`onmt.inputters.dynamic_iterator`, inference): buckets of 16384 lines, each sorted by
  source length (shortest first, stable), cut into batches of `batch_size` sentences, or of
  sentences x longest source <= `batch_size` tokens;
- 1.x, 2.x (`OrderedIterator`, inference): consecutive runs of `batch_size` lines (tokens:
  sentences x (longest source + 2)), each batch sorted longest first (stable).
"""
from __future__ import annotations

BUCKET_3X = 16384


def _cut(lengths: list[int], indices: list[int], batch_size: int, tokens: bool, extra: int):
    """OpenNMT-py's batch_iter: add sentences until the size reaches batch_size; a batch that
    would go over gives back its last sentence (unless that sentence is alone)."""
    batch, longest = [], 0
    for i in indices:
        batch.append(i)
        longest = max(longest, lengths[i] + extra)
        size = len(batch) * longest if tokens else len(batch)
        if size < batch_size:
            continue
        if size == batch_size:
            yield batch
            batch, longest = [], 0
        elif len(batch) > 1:
            yield batch[:-1]
            batch = batch[-1:]
            longest = lengths[batch[0]] + extra
    if batch:
        yield batch


def onmt_batches(lengths: list[int], version: int, batch_size: int,
                 batch_type: str) -> list[list[int]]:
    """The indices of the sentences of each batch, in batch order."""
    tokens = batch_type == "tokens"
    out = []
    if version >= 3:
        for start in range(0, len(lengths), BUCKET_3X):
            bucket = sorted(range(start, min(start + BUCKET_3X, len(lengths))),
                            key=lambda i: lengths[i])
            out += list(_cut(lengths, bucket, batch_size, tokens, 0))
        return out
    for batch in _cut(lengths, list(range(len(lengths))), batch_size, tokens, 2):
        out.append(sorted(batch, key=lambda i: lengths[i], reverse=True))
    return out


def max_lengths(options, lengths: list[int]) -> list[int]:
    """-max_length for each sentence of one batch, capped (3.x -max_length_ratio) by the
    batch's longest source, or per sentence by its own."""
    if options.max_length_ratio <= 0:
        return [options.max_length] * len(lengths)
    longest = max(lengths)

    def cap(length):
        return int(min(options.max_length, length * options.max_length_ratio + 5))
    return [cap(length if options.per_sentence else longest) for length in lengths]
