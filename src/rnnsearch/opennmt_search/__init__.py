"""OpenNMT-py's own decoding for converted OpenNMT-py models: onmt_translate's beam search,
greedy search and sampling, penalties, batches and copy attention, in the rules of its 1.x,
2.x and 3.x releases (the search itself is engine/rs_search_opennmt.c). See
docs/convert-opennmt.md, "Search"."""
from .options import NAMES, OpenNMTOptions, resolve
from .translate import translate

__all__ = ["NAMES", "OpenNMTOptions", "resolve", "translate", "from_translate_batch"]

# translate_batch's own options and their defaults, which OpenNMT-py names differently
_RENAMED = {"num_hypotheses": ("n_best", 1), "min_decoding_length": ("min_length", 0),
            "max_decoding_length": ("max_length", 256), "normalize_scores":
            ("length_penalty='avg'", False), "suppress_tokens": ("ban_unk_token", ())}


def from_translate_batch(translator, source, arguments: dict, options: dict):
    """translate_batch(..., search="opennmt", **options): its shared arguments (beam_size,
    return_scores, return_attention, truncate) pass on; the ones OpenNMT-py spells
    differently must be left alone (TypeError naming OpenNMT-py's); length_penalty and
    coverage_penalty are OpenNMT-py's strings ('avg', 'wu', ...; the numbers 0.0 mean 'not
    given')."""
    for name, (theirs, default) in _RENAMED.items():
        value = arguments[name]
        if value != default and not (isinstance(value, (list, tuple)) and not value and
                                     not default):
            raise TypeError(f"{name} is not an option of search='opennmt'; use {theirs}")
    flags = dict(options)
    for name in ("length_penalty", "coverage_penalty"):
        value = arguments[name]
        if isinstance(value, str):
            flags[name] = value
        elif value != 0.0:
            raise TypeError(f"with search='opennmt', {name} is OpenNMT-py's: 'none', "
                            f"{'avg' if name == 'length_penalty' else 'summary'}, 'wu' "
                            f"({'alpha' if name == 'length_penalty' else 'beta'} sets its "
                            "weight)")
    if arguments["beam_size"] != 5:
        flags.setdefault("beam_size", arguments["beam_size"])
    return translate(translator, source, return_scores=arguments["return_scores"],
                     return_attention=arguments["return_attention"],
                     truncate=arguments["truncate"], **flags)
