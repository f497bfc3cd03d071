"""Keras vocabularies (Tokenizer JSON, word_index, token lists, text files) -> rnnsearch's
vocabulary lists of exactly the embeddings' sizes, with the special tokens found or named.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

from ...errors import ModelError
from ...limits import MAX_VOCAB_BYTES
from ...safe_files import parse_json, read_bytes
from ..common.one_hot import UNKNOWN
from .mapping import Plan
from .pickled import is_pickle, load_pickled_tokenizer

AUTO_MARKERS = (("<start>", "<end>"), ("<sos>", "<eos>"), ("<s>", "</s>"), ("<bos>", "<eos>"),
                ("[start]", "[end]"), ("startseq", "endseq"), ("sos", "eos"), ("\t", "\n"))
OOV_GUESSES = ("<OOV>", "<oov>", "<unk>", "<UNK>", "[UNK]", "UNK", "<UNKNOWN>")


@dataclass
class VocabularyInfo:
    path: str
    tokens: dict[int, str]           # id -> token, as the Keras side wrote it
    oov: str | None = None           # the out-of-vocabulary token, if any
    lower: bool = False              # Keras Tokenizer settings (defaults for the options)
    char_level: bool = False
    filters: str = ""
    num_words: int | None = None
    tokenizer: bool = False          # read from a Tokenizer: its settings say how to split


def load_vocabulary(path: str) -> VocabularyInfo:
    """A Keras Tokenizer's to_json() or the pickled Tokenizer itself, a JSON word_index
    {token: id}, index_word {id: token} or token list, or a text file with one token per
    line. Id 0 is padding when no token
    has it (Tokenizer ids start at 1; an empty first line in a text file, as
    TextVectorization.get_vocabulary() writes it, is padding too)."""
    raw = read_bytes(path, "vocabulary", MAX_VOCAB_BYTES)
    if is_pickle(raw):   # pickle.dump(tokenizer, f)
        return _vocabulary_from_json(path, {"config": load_pickled_tokenizer(path, raw)})
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelError(f"cannot read vocabulary {path}: not UTF-8 text, JSON or a pickled "
                         f"Keras Tokenizer ({e})") from e
    if text.lstrip()[:1] in ("{", "["):
        try:
            data = parse_json(text, path)
        except ModelError as e:
            if path.endswith(".json"):
                raise ModelError(f"{path}: not valid JSON: {e}") from e
            data = None
        if data is not None:
            return _vocabulary_from_json(path, data)
    lines = text.split("\n")
    if text.endswith("\n"):
        lines = lines[:-1]
    if lines and all(line.endswith("\r") for line in lines):
        lines = [line[:-1] for line in lines]
    if not lines:
        raise ModelError(f"{path}: empty vocabulary")
    tokens = {}
    for i, line in enumerate(lines):
        if line == "":
            if i == 0:
                continue   # padding
            raise ModelError(f"{path}: line {i + 1} is empty")
        tokens[i] = line
    return VocabularyInfo(path, tokens, _guess_oov(tokens))


def _guess_oov(tokens: dict[int, str]) -> str | None:
    token = tokens.get(1)
    return token if 0 not in tokens and token in OOV_GUESSES else None


def _vocabulary_from_json(path: str, data) -> VocabularyInfo:
    def decode(value):   # Tokenizer.to_json() stores word_index as a JSON string
        return parse_json(value, f"{path}: word_index") if isinstance(value, str) else value

    if isinstance(data, list):
        if not all(isinstance(t, str) for t in data):
            raise ModelError(f"{path}: a JSON vocabulary list must hold strings")
        tokens = {i: t for i, t in enumerate(data) if not (i == 0 and t == "")}
        if any(t == "" for t in tokens.values()):
            raise ModelError(f"{path}: empty token after position 0")
        return VocabularyInfo(path, tokens, _guess_oov(tokens))
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a Keras Tokenizer JSON, a word_index object or a "
                         "token list")
    info = VocabularyInfo(path, {})
    if "config" in data and isinstance(data["config"], dict):   # tokenizer.to_json()
        config = data["config"]
        if "word_index" not in config:
            raise ModelError(f"{path}: Tokenizer JSON without word_index (fit the tokenizer "
                             "before saving it)")
        word_index = decode(config["word_index"])
        if not isinstance(word_index, dict):
            raise ModelError(f"{path}: the Tokenizer's word_index must be an object")
        info.oov = config.get("oov_token")
        info.lower = bool(config.get("lower", True))
        info.char_level = bool(config.get("char_level", False))
        info.filters = config.get("filters") or ""
        info.num_words = config.get("num_words")
        for key, value, kind in (("oov_token", info.oov, str), ("filters", info.filters, str),
                                 ("num_words", info.num_words, int)):
            if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                raise ModelError(f"{path}: the Tokenizer's {key} = {str(value)[:50]}; "
                                 f"expected {kind.__name__} or null")
        info.tokenizer = True
    elif data and all(isinstance(k, str) and k.isascii() and k.isdigit() for k in data) and \
            all(isinstance(v, str) for v in data.values()):              # index_word
        word_index = {v: int(k) for k, v in data.items()}
    else:
        word_index = data
    seen: dict[int, str] = {}
    for token, index in word_index.items():
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ModelError(f"{path}: token {token!r} has id {index!r}; expected an integer "
                             ">= 0")
        if index in seen:
            raise ModelError(f"{path}: tokens {seen[index]!r} and {token!r} share id {index}")
        if token == "":
            raise ModelError(f"{path}: empty token with id {index}")
        seen[index] = token
    info.tokens = seen
    if info.oov is None:
        info.oov = _guess_oov(seen)
    if info.oov is not None and info.oov not in word_index:
        info.oov = None
    return info


def _sanitize(token: str) -> str:
    # a vocabulary line cannot hold a newline (the char-level end token is often "\n")
    return token.replace("\n", "\\n")


def _slots(info: VocabularyInfo, size: int, side: str, plan: Plan) -> list:
    slots: list = [None] * size
    too_big = []
    for index, token in info.tokens.items():
        if info.num_words and index >= info.num_words:
            continue   # the Tokenizer never produces these ids
        if index >= size:
            too_big.append(index)
            continue
        slots[index] = token
    if too_big:
        raise ModelError(f"{info.path}: the {side} vocabulary has ids up to {max(too_big)} "
                         f"({len(info.tokens)} tokens) but {plan.describe_size(side)}: "
                         "vocabulary and model do not belong together")
    return slots


def _markers(src: list, tgt: list, src_info: VocabularyInfo, tgt_info: VocabularyInfo,
             bos, eos, add_bos: bool, add_eos: bool) -> tuple[str, str]:
    """The target's start and end tokens: given (as typed in a shell too) or detected."""
    present = {t for t in tgt if t is not None}
    if bos is None and eos is None:
        pair = next((p for p in AUTO_MARKERS if p[0] in present and p[1] in present), None)
        if pair is None:
            raise ModelError(f"{tgt_info.path}: cannot tell the start and end tokens; pass "
                             "--bos and --eos (as they appear in the target vocabulary)")
        bos, eos = pair
    def unescape(token):   # --bos '\t' --eos '\n' typed in a shell
        if token is None or token in present:
            return token
        plain = token.replace("\\t", "\t").replace("\\n", "\n").replace("\\r", "\r")
        return plain if plain in present else token

    bos, eos = unescape(bos), unescape(eos)
    for name, token in (("start (--bos)", bos), ("end (--eos)", eos)):
        if token is None:
            raise ModelError("pass both --bos and --eos")
        if token not in present:
            raise ModelError(f"{tgt_info.path}: the {name} token {token!r} is not in the "
                             "target vocabulary")
    for flag, token in ((add_bos, bos), (add_eos, eos)):
        if flag and token not in src:
            raise ModelError(f"{src_info.path}: the source vocabulary lacks {token!r}, which "
                             "the model is said to add to every source")
    return bos, eos


def assemble_vocabularies(plan: Plan, src_info: VocabularyInfo, tgt_info: VocabularyInfo,
                           bos, eos, add_bos: bool, add_eos: bool, pad_name: str):
    """Vocabulary lists of exactly the embeddings' sizes, and the special token strings.

    Id 0 (Keras padding) is named pad_name; the unknown token is the source's OOV token, or
    the padding entry when the source has none (unknown words then read as padding; Keras'
    Tokenizer would drop them). Unused ids get placeholder names."""
    src = _slots(src_info, plan.vocabulary_size("source"), "source", plan)
    tgt = _slots(tgt_info, plan.vocabulary_size("target"), "target", plan)
    bos, eos = _markers(src, tgt, src_info, tgt_info, bos, eos, add_bos, add_eos)

    src_oov = src.index(src_info.oov) if src_info.oov is not None and src_info.oov in src \
        else None
    if src[0] is None:
        pad_slot, pad = 0, pad_name
        unk = _sanitize(src_info.oov) if src_oov is not None else pad
    elif src_oov is not None:
        pad_slot = src_oov
        pad = unk = _sanitize(src_info.oov)
    elif None in src:
        pad_slot, pad = src.index(None), pad_name
        unk = pad
    else:
        raise ModelError(f"{src_info.path}: the source vocabulary has no padding (id 0 unused) "
                         "or OOV entry, which rnnsearch needs")
    src[pad_slot] = pad

    tgt_oov = tgt.index(tgt_info.oov) if tgt_info.oov is not None and tgt_info.oov in tgt \
        else None
    if tgt_oov is not None and unk != pad:
        tgt[tgt_oov] = unk
        if tgt[0] is None:
            tgt[0] = pad
    elif tgt[0] is None:
        tgt[0] = unk
    elif tgt_oov is not None:
        tgt[tgt_oov] = unk
    elif None in tgt:
        tgt[tgt.index(None)] = unk
    else:
        raise ModelError(f"{tgt_info.path}: the target vocabulary has no padding (id 0 unused), "
                         "OOV or free entry to stand for the unknown token")
    specials = {"pad": pad, "unk": unk, "bos": _sanitize(bos), "eos": _sanitize(eos)}
    return _named(src, src_info, "source"), _named(tgt, tgt_info, "target"), specials


def assemble_one_hot_vocabularies(plan: Plan, src_info: VocabularyInfo,
                                  tgt_info: VocabularyInfo, bos, eos, add_bos: bool,
                                  add_eos: bool, pad_token: str | None):
    """The character tables of a one-hot model (every one of the V positions is a token,
    ids from 0, e.g. the lstm_seq2seq example's input_token_index / target_token_index),
    and the special tokens. The unknown token is added by common/one_hot.py as entry V;
    it pads too unless pad_token names one of the source's tokens (the example pads its
    inputs with " ")."""
    src = _slots(src_info, plan.vocabulary_size("source"), "source", plan)
    tgt = _slots(tgt_info, plan.vocabulary_size("target"), "target", plan)
    bos, eos = _markers(src, tgt, src_info, tgt_info, bos, eos, add_bos, add_eos)
    if pad_token is not None and pad_token not in src:
        raise ModelError(f"{src_info.path}: the padding token (--pad-token) {pad_token!r} is "
                         "not in the source vocabulary; a one-hot model pads with one of its "
                         "characters")
    specials = {"pad": _sanitize(pad_token) if pad_token is not None else UNKNOWN,
                "unk": UNKNOWN, "bos": _sanitize(bos), "eos": _sanitize(eos)}
    return _named(src, src_info, "source"), _named(tgt, tgt_info, "target"), specials


def _named(slots: list, info: VocabularyInfo, side: str) -> list[str]:
    """A vocabulary list: placeholder names for unused ids, newlines escaped, no clashes."""
    unused = [i for i, t in enumerate(slots) if t is None]
    if unused:
        warnings.warn(f"{info.path}: {len(unused)} of the {len(slots)} {side} ids have no "
                      "token (named <unused_N>)", stacklevel=4)
    names = [f"<unused_{i}>" if t is None else _sanitize(t) for i, t in enumerate(slots)]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise ModelError(f"{info.path}: the {side} vocabulary would name ids "
                             f"{seen[name]} and {i} both {name!r} (a token clashes with a "
                             "special token name; see --pad-token)")
        seen[name] = i
    return names
