"""`rnnsearch convert --from keras`: a Keras functional training model -> a model directory
(docs/convert-keras.md).

    files.py    .keras / .h5 / .weights.h5 files read with h5py: the layer graph and weights
    mapping.py  the graph mapped onto the canonical model, and the converter entry
"""
from .mapping import DESCRIPTION, add_arguments, convert, convert_keras

__all__ = ["DESCRIPTION", "add_arguments", "convert", "convert_keras"]
