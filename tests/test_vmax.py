"""The maximum of an array and of each chunk of it (rs_vmax_chunks: log-softmax's shift and
the top-k pruning bounds): exact against NumPy, NaN reported, and the same bytes on every
instruction set -- even the sign of a zero among equal maxima, which the lane order fixes."""
import pytest

from isa_child import run_on_isa

_CHECK = """
import numpy as np
from rnnsearch._engine import maxima
rng = np.random.default_rng(1)
cases = []
for n in (1, 5, 15, 16, 17, 31, 64, 65, 200, 8000, 32003):
    for chunk in (1, 7, 16, 64, n):
        x = (rng.standard_normal(n) * 4).astype(np.float32)
        cases.append((x, chunk))
signed = np.array([0.0, -0.0] * 40, np.float32)        # only zeros: which sign wins
for _ in range(20):                                      # zeros of random signs, some below
    z = np.where(rng.random(83) < 0.5, np.float32(0.0), np.float32(-0.0)).astype(np.float32)
    z[rng.random(83) < 0.3] = -1.0
    cases += [(z, 64), (z, 16), (z, 83), (z[:37], 37)]
cases += [(signed, 64), (signed[1:], 64), (signed, 5), (-signed, 64),
          (np.array([-np.inf] * 20, np.float32), 8),
          (np.array([np.inf, 1, -np.inf], np.float32), 2)]
out = []
for x, chunk in cases:
    top, chunks = maxima(x, chunk)
    assert top == x.max(), (len(x), chunk)
    want = [x[i:i + chunk].max() for i in range(0, len(x), chunk)]
    assert list(chunks) == want, (len(x), chunk)
    out.append(np.float32(top).tobytes().hex() + chunks.tobytes().hex())
for n, at in ((1, 0), (17, 16), (100, 3), (100, 99), (8000, 4097)):
    x = np.ones(n, np.float32)
    x[at] = np.nan
    top, chunks = maxima(x, 64)
    assert np.isnan(top), (n, at)
assert maxima(np.array([], np.float32), 4)[0] == -np.inf
print(__import__("hashlib").sha256("".join(out).encode()).hexdigest())
"""


def _run(isa):
    done = run_on_isa(_CHECK, isa)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_maxima_are_exact_and_identical_on_every_instruction_set():
    results = {isa: _run(isa) for isa in ("portable", "avx2", "native")}
    assert len(set(results.values())) == 1, results


def test_chunk_must_be_positive():
    import numpy as np
    from rnnsearch._engine import maxima
    with pytest.raises(ValueError):
        maxima(np.ones(3, np.float32), 0)
