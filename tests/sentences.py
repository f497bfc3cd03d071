"""Random source sentences from a Translator's vocabulary, for the tests of the APIs built
on translate_batch (streaming, async, the batcher)."""
import numpy as np


def random_sentences(translator, n: int, seed: int = 0, shortest: int = 1,
                     longest: int = 11) -> list[list[str]]:
    """n token lists of shortest..longest tokens, none of them special (ids 0-3)."""
    rng = np.random.default_rng(seed)
    vocab = translator.source_vocab.tokens[4:]
    return [[str(rng.choice(vocab)) for _ in range(rng.integers(shortest, longest + 1))]
            for _ in range(n)]


def endless_sources(read: list):
    """An endless iterable of two alternating sources, recording each index it yields in
    `read` (to check how far a stream has read ahead)."""
    i = 0
    while True:
        read.append(i)
        yield ["s1", "s2"] if i % 2 else ["s3"]
        i += 1


def same_results(a, b) -> None:
    """Two lists of TranslationResults with the same hypotheses and scores."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.hypotheses == y.hypotheses
        assert x.scores == y.scores
