"""Every matrix-product kernel against NumPy on awkward sizes, and the row-independence
that makes batched decoding equal one-by-one decoding."""
import numpy as np
import pytest

from rnnsearch._engine import kernel_isa, linear_kernel

ISAS = ["portable", "avx2", "avx512"]
SHAPES = [(1, 1, 1), (1, 7, 3), (3, 17, 5), (4, 16, 16), (5, 33, 9), (9, 100, 31),
          (2, 0, 4), (0, 8, 4), (6, 1, 129), (13, 257, 67)]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("rows, inp, out", SHAPES)
def test_kernel_matches_numpy(isa, rows, inp, out):
    rng = np.random.default_rng(rows * 1000 + inp * 10 + out)
    x = rng.standard_normal((rows, inp)).astype(np.float32)
    w = rng.standard_normal((out, inp)).astype(np.float32)
    b = rng.standard_normal(out).astype(np.float32)
    y0 = rng.standard_normal((rows, out)).astype(np.float32)
    got = linear_kernel(isa, x, w, b)
    if got is None:
        pytest.skip(f"this CPU has no {isa}")
    expected = x.astype(np.float64) @ w.T.astype(np.float64) + b
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4 * max(1, inp) ** 0.5)
    acc = linear_kernel(isa, x, w, b, y=y0)
    np.testing.assert_allclose(acc, expected + y0, rtol=1e-5, atol=1e-4 * max(1, inp) ** 0.5)
    no_bias = linear_kernel(isa, x, w)
    np.testing.assert_allclose(no_bias, expected - b, rtol=1e-5, atol=1e-4 * max(1, inp) ** 0.5)


@pytest.mark.parametrize("isa", ISAS)
def test_row_result_independent_of_block(isa):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((11, 77)).astype(np.float32)
    w = rng.standard_normal((45, 77)).astype(np.float32)
    full = linear_kernel(isa, x, w)
    if full is None:
        pytest.skip(f"this CPU has no {isa}")
    for r in range(11):
        np.testing.assert_array_equal(linear_kernel(isa, x[r:r + 1], w)[0], full[r])
    np.testing.assert_array_equal(linear_kernel(isa, x[3:8], w), full[3:8])


def test_active_kernel_is_named():
    assert kernel_isa() in ISAS
