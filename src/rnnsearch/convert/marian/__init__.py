"""`rnnsearch convert --from marian`: a Marian RNN model (--type s2s, nematus, amun) -> a model
directory (docs/convert-marian.md). build(...) gives the config and tensors without writing
anything."""
from .converter import DESCRIPTION, add_arguments, build, convert, convert_marian

__all__ = ["DESCRIPTION", "add_arguments", "build", "convert", "convert_marian"]
