"""`rnnsearch convert --from joeynmt`: a JoeyNMT recurrent model -> a model directory
(docs/convert-joeynmt.md). build(config, state, ...) gives the config and tensors
without writing anything."""
from .converter import DESCRIPTION, add_arguments, build, convert

__all__ = ["DESCRIPTION", "add_arguments", "build", "convert"]
