"""`rnnsearch convert --from keras`: a Keras functional training model -> a model directory
(docs/convert-keras.md).

    converter.py  options and the entry (convert_keras)
    files.py      .keras / .h5 / .weights.h5 files read with h5py: the layer graph, weights
    walker.py     the graph read a layer at a time (Dense, LSTM/GRU stacks, Embedding)
    mapping.py    the whole graph mapped onto the canonical model's roles (a Plan)
    tensors.py    a Plan -> the canonical config and tensors
    vocab.py      Keras vocabularies -> rnnsearch's, with the special tokens
"""
from .converter import DESCRIPTION, add_arguments, convert, convert_keras

__all__ = ["DESCRIPTION", "add_arguments", "convert", "convert_keras"]
