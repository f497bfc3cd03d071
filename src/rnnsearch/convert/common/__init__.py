"""Helpers shared by several converters. A framework's subpackage imports from here, never
from another framework's subpackage.

    layouts.py         each framework's LSTM/GRU gate order -> the canonical one
    external_vocab.py  --source-vocab/--target-vocab, special-token and tokenizer options,
                       for exports that carry no vocabulary (onnx, torch)
    checkpoint.py      PyTorch checkpoints read without their framework and without running
                       pickled code (opennmt, joeynmt)
"""
