"""OpenNMT-py's own decoding for converted OpenNMT-py models: onmt_translate's beam search,
greedy search and sampling, penalties, batches and copy attention, in the rules of its 1.x,
2.x and 3.x releases (the search itself is engine/rs_search_opennmt.c). See
docs/convert-opennmt.md, "Search"."""
from .options import NAMES, OpenNMTOptions, resolve
from .translate import translate

__all__ = ["NAMES", "OpenNMTOptions", "resolve", "translate", "from_translate_batch"]

# translate_batch's own options that OpenNMT-py names differently (None: not given)
_RENAMED = {"num_hypotheses": "n_best", "min_decoding_length": "min_length",
            "max_decoding_length": "max_length", "normalize_scores": "length_penalty='avg'",
            "suppress_tokens": "ban_unk_token"}
# translate_batch's options that OpenNMT-py's search does not have
_UNSUPPORTED = ("target_prefix", "callback", "shrinking_beam", "length_normalization",
                "word_penalty", "max_length_factor", "include_eos_attention")


def from_translate_batch(translator, source, arguments: dict, options: dict):
    """translate_batch(..., search="opennmt", **options): its shared arguments (beam_size,
    replace_unk, phrase_table, return_scores, return_attention, truncate) pass on; the ones
    OpenNMT-py spells differently must be left alone (TypeError naming OpenNMT-py's);
    length_penalty and coverage_penalty are OpenNMT-py's strings ('avg', 'wu', ...). The
    model directory's `decoding` defaults do not apply: onmt_translate's own do."""
    for name, theirs in _RENAMED.items():
        value = arguments[name]
        if value is not None and not (name == "suppress_tokens" and
                                      isinstance(value, (list, tuple)) and not value):
            raise TypeError(f"{name} is not an option of search='opennmt'; use {theirs}")
    for name in _UNSUPPORTED:
        if arguments[name] not in (None, False):
            raise ValueError(f"{name} is not supported with search='opennmt'")
    flags = dict(options)
    for name in ("length_penalty", "coverage_penalty"):
        value = arguments[name]
        if isinstance(value, str):
            flags[name] = value
        elif value is not None:
            raise TypeError(f"with search='opennmt', {name} is OpenNMT-py's: 'none', "
                            f"{'avg' if name == 'length_penalty' else 'summary'}, 'wu' "
                            f"({'alpha' if name == 'length_penalty' else 'beta'} sets its "
                            "weight)")
    for name in ("beam_size", "replace_unk", "phrase_table"):
        if arguments[name] is not None:
            if name == "phrase_table" and not isinstance(arguments[name], str):
                raise TypeError("with search='opennmt', phrase_table is a file's path")
            flags.setdefault(name, arguments[name])
    return translate(translator, source, return_scores=arguments["return_scores"],
                     return_attention=arguments["return_attention"],
                     truncate=arguments["truncate"], **flags)
