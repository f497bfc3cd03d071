"""Keras 3 on the torch backend, for the Keras converter tests: `from keras_on_torch import
keras, one_torch_thread` before anything else imports keras (never TensorFlow). Skips the
importing test module when Keras or h5py is missing or Keras already runs another
backend."""
import os

import pytest

os.environ["KERAS_BACKEND"] = "torch"
keras = pytest.importorskip("keras")
pytest.importorskip("h5py")
if keras.backend.backend() != "torch":   # keras was imported earlier with another backend
    pytest.skip("these tests run Keras on the torch backend", allow_module_level=True)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Keras' step-by-step decoding is thousands of tiny matrix products: extra torch
    threads only add contention (5x slower on a busy machine)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
