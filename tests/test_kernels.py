"""Every matrix-product kernel against NumPy on awkward sizes, and the row-independence
that makes batched decoding equal one-by-one decoding."""
import numpy as np
import pytest

from rnnsearch._engine import kernel_isa, linear_kernel

from isa_child import run_on_isa

ISAS = ["portable", "avx2", "avx512", "avx2-packed", "avx512-packed", "neon-packed"]
SHAPES = [(1, 1, 1), (1, 7, 3), (3, 17, 5), (4, 16, 16), (5, 33, 9), (9, 100, 31),
          (2, 0, 4), (0, 8, 4), (6, 1, 129), (13, 257, 67), (7, 64, 100), (1, 300, 1000),
          (1, 5, 40), (2, 40, 90), (3, 19, 81)]  # panel-group remainders


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
    assert kernel_isa() in ("portable", "avx2", "avx512", "neon")


_ELEMENTWISE_CHECK = """
import numpy as np, sys
from rnnsearch._engine import elementwise
x = np.concatenate([np.linspace(-100, 100, 20011), np.linspace(-1, 1, 2001), [0.0, -0.0, 1e-8, -1e-8]]).astype(np.float32)
x64 = x.astype(np.float64)
for n in (1, 7, 15, 16, 17, 33):  # tails shorter than a vector
    np.testing.assert_allclose(elementwise("tanh", x[:n]), np.tanh(x64[:n]), atol=2e-7)
np.testing.assert_allclose(elementwise("tanh", x), np.tanh(x64), atol=2e-7, rtol=1e-6)
np.testing.assert_allclose(elementwise("sigmoid", x), 1 / (1 + np.exp(-x64)), atol=1e-7, rtol=2e-6)
e = x[x < 87]
np.testing.assert_allclose(elementwise("exp", e), np.exp(e.astype(np.float64)), rtol=3e-7, atol=1e-37)
assert np.all(np.isfinite(elementwise("exp", np.array([1000.0], np.float32))))
assert elementwise("exp", np.array([-1000.0], np.float32))[0] == 0.0
rng = np.random.default_rng(0)
for n in (1, 15, 16, 17, 33, 32000):   # shorter than, equal to and not a multiple of the lanes
    z = (rng.standard_normal(n) * 5).astype(np.float32)
    want = z.astype(np.float64) - np.logaddexp.reduce(z.astype(np.float64))
    np.testing.assert_allclose(elementwise("log_softmax", z), want, atol=2e-5)
    z[n // 2] = np.nan
    assert np.isnan(elementwise("log_softmax", z)).all()
print("ok")
"""


@pytest.mark.parametrize("isa", ["portable", "avx2", "native"])
def test_elementwise_functions_are_accurate(isa):
    done = run_on_isa(_ELEMENTWISE_CHECK, isa)
    assert done.returncode == 0, done.stderr


_INT8_CHECK = """
import numpy as np
from rnnsearch._engine import linear_int8, kernel_isa
print(kernel_isa("int8"))
def quantized(a, reciprocal=False):
    # the engine's float32 rounding: weights round(w / s), activations round(x * (1 / s))
    s = np.abs(a).max(axis=1, keepdims=True) / np.float32(127)
    s[s == 0] = 1
    q = np.rint(a * (np.float32(1) / s)) if reciprocal else np.rint(a / s)
    return np.clip(q, -127, 127).astype(np.float64), s.astype(np.float64)
for rows, inp, out in [(1, 1, 1), (1, 7, 3), (3, 17, 5), (5, 33, 9), (7, 64, 100), (13, 257, 67), (2, 5, 0),
                        (4, 40, 70), (5, 9, 64),   # every row count with 4-panel tiles
                        (9, 1030, 600), (14, 4100, 70)]:  # the last two: several L2 blocks
    rng = np.random.default_rng(rows + inp + out)
    x = rng.standard_normal((rows, inp)).astype(np.float32)
    w = rng.standard_normal((out, inp)).astype(np.float32)
    b = rng.standard_normal(out).astype(np.float32)
    got = linear_int8(x, w, b)
    xq, sx = quantized(x, reciprocal=True)
    wq, sw = quantized(w)
    exact = (xq @ wq.T) * sx * sw.T + b   # what int8 arithmetic must give
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-4)
    if rows > 1:  # rows are independent
        for r in range(rows):
            np.testing.assert_array_equal(linear_int8(x[r:r + 1], w, b)[0], got[r])
# a concatenation [large; small; medium] split into parts gets one x scale per part
rng = np.random.default_rng(5)
for rows, parts, out in [(3, (7, 13, 5), 37), (8, (64, 256, 1), 300), (1, (1, 1, 2), 3)]:
    x = np.concatenate([rng.standard_normal((rows, n)).astype(np.float32) * g
                        for n, g in zip(parts, (3.0, 0.01, 0.5))], axis=1)
    w = rng.standard_normal((out, sum(parts))).astype(np.float32)
    b = rng.standard_normal(out).astype(np.float32)
    splits = tuple(np.cumsum(parts)[:-1])
    got = linear_int8(x, w, b, splits=splits)
    wq, sw = quantized(w)
    exact = b + sum((xq @ wq[:, a:z].T) * sx * sw.T
                    for a, z in zip((0,) + splits, splits + (sum(parts),))
                    for xq, sx in [quantized(x[:, a:z], reciprocal=True)])
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-4)
    whole = linear_int8(x, w, b)    # one scale: the small part loses its precision
    true = x.astype(np.float64) @ w.T.astype(np.float64) + b
    if rows * out > 100:
        assert np.abs(got - true).mean() < np.abs(whole - true).mean()
print("ok")
"""


@pytest.mark.parametrize("isa", ["portable", "avx2", "native"])
def test_int8_kernels_compute_the_quantized_product(isa):
    done = run_on_isa(_INT8_CHECK, isa)
    assert done.returncode == 0, done.stderr
    if isa != "native":
        assert done.stdout.split()[0] == isa
