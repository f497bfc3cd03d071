"""PyTorch reference for the model family of docs/model-format.md (needs torch).

Plain modules (`Seq2Seq`), a plain greedy/beam search (`search.translate`), and export to /
loading from model directories. The engine's tests check it against this package.
"""
from . import search
from .export import (export_model_dir, load_model_dir, load_tensors, model_from_tensors,
                     model_tensors, random_model, spec_parameters)
from .modules import DecoderState, GRUCellResetBefore, Seq2Seq
from .search import Hypothesis, translate, translate_batch

__all__ = ["Seq2Seq", "DecoderState", "GRUCellResetBefore", "search", "translate",
           "translate_batch", "Hypothesis", "export_model_dir", "load_model_dir",
           "load_tensors", "model_from_tensors", "model_tensors", "random_model",
           "spec_parameters"]
