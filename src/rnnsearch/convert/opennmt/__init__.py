"""`rnnsearch convert --from opennmt-py`: an OpenNMT-py RNN checkpoint -> a model directory
(docs/convert-opennmt.md). build(checkpoint) gives the config, tensors and
vocabularies without writing anything."""
from .converter import DESCRIPTION, add_arguments, build, convert

__all__ = ["DESCRIPTION", "add_arguments", "build", "convert"]
