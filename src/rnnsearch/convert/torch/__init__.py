"""`rnnsearch convert --from torch`: a plain PyTorch state_dict, a role mapping and the
architecture -> a model directory (docs/convert-torch.md). From Python:
convert_state_dict(state_dict, mapping, config, source_vocab, target_vocab, output)."""
from .converter import DESCRIPTION, add_arguments, convert, convert_state_dict

__all__ = ["DESCRIPTION", "add_arguments", "convert", "convert_state_dict"]
