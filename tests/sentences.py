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
