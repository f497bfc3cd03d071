"""The Python API: Translator and TranslationResult (CTranslate2-style)."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from . import streaming
from .errors import ModelError
from .limits import (MAX_ABS_PENALTY, MAX_BATCH, MAX_BEAM, MAX_DECODING_LENGTH, MAX_THREADS,
                     check_decoding_size, check_embedding_size, check_int, check_real)
from .model_dir import ModelFiles, load_model_dir
from .source_options import memory_length
from .replace_unk import load_phrase_table, replace_unknown
from .tokenizers import load_tokenizer
from .vocab_map import VocabMap, call_candidates, load_vocab_map, model_vocab_map

DEFAULT_MODEL_NAME = "g2p-en"
DEFAULT_MAX_BATCH_SIZE = 32   # sentences per engine call in translate()


_CHECKED_DECODING_KEPT = 64   # distinct option sets whose checked form a Translator keeps


def _options_key(options: dict):
    """A call's decoding options as a dictionary key that tells values of different types
    apart (1, 1.0 and True check differently), or None when one is not hashable."""
    values = tuple(options.values())
    if list in map(type, values):   # suppress_tokens, as a list of strings
        values = tuple((list, tuple((type(t), t) for t in v)) if type(v) is list else v
                       for v in values)
    key = (tuple(options), values, tuple(map(type, values)))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def default_model_path() -> str:
    """The embedded default model: the repository's models/, installed as the package
    rnnsearch.models (setup.py)."""
    return str(resources.files("rnnsearch.models").joinpath(DEFAULT_MODEL_NAME))

COMPUTE_TYPES = ("float32", "int8", "bfloat16")


@dataclass
class TranslationResult:
    hypotheses: list[list[str]]
    scores: list[float] = field(default_factory=list)
    attention: list[np.ndarray] = field(default_factory=list)
    log_probs: list[float] = field(default_factory=list)  # with return_scores: the sums of
                                                          # log-probabilities, unpenalised


@dataclass
class ScoringResult:
    """score_batch's result for one sentence (as CTranslate2's): the scored target tokens
    (the given ones, then EOS) and each one's log-probability."""
    tokens: list[str]
    log_probs: list[float]
    total: float   # the sum of log_probs, in order, in float32: the beam search's total

    def cumulated_score(self) -> float:
        return self.total

    def normalized_score(self) -> float:
        return self.total / len(self.log_probs) if self.log_probs else 0.0


# translate_batch's options that the model directory's `decoding` section gives defaults for
DECODING_OPTIONS = ("beam_size", "num_hypotheses", "length_penalty", "coverage_penalty",
                    "normalize_scores", "min_decoding_length", "max_decoding_length",
                    "suppress_tokens", "replace_unk", "shrinking_beam", "length_normalization",
                    "word_penalty", "max_length_factor")


class Translator:
    """Loads a model directory once; translate_batch and translate may be called from
    several threads at once (the engine releases the GIL and shares no mutable state but
    intra_threads' worker pool, which serves one call at a time; the others compute alone,
    with the same results). intra_threads=N: N threads per call (docs/architecture.md,
    "Threads")."""

    def __init__(self, model_path: str | None = None, intra_threads: int = 1,
                 compute_type: str = "float32"):
        from ._engine import Engine  # compiled; imported here so model tools work without it

        if compute_type not in COMPUTE_TYPES:
            raise ValueError(f"compute_type {compute_type!r} is not supported; "
                             f"choose one of {list(COMPUTE_TYPES)}")
        if isinstance(intra_threads, bool) or not isinstance(intra_threads, int) or \
                not 1 <= intra_threads <= MAX_THREADS:
            raise ValueError(f"intra_threads must be an integer from 1 to {MAX_THREADS}, got "
                             f"{intra_threads!r}")
        if model_path is not None and not isinstance(model_path, (str, os.PathLike)):
            raise TypeError(f"model_path must be a path, got {type(model_path).__name__}")
        self.model_path = model_path or default_model_path()
        self.intra_threads = intra_threads
        self.compute_type = compute_type
        self.files: ModelFiles = load_model_dir(self.model_path)
        config = self.files.config
        specials = config["special_tokens"]
        self.source_vocab, self.target_vocab = self.files.source_vocab, self.files.target_vocab
        source_ids = self.source_vocab.ids if self.source_vocab else {}  # none for features
        self._unk = source_ids.get(specials["unk"])
        self._src_bos = source_ids.get(specials["bos"])
        self._src_eos = source_ids.get(specials["eos"])
        self._src_pad = source_ids.get(specials["pad"])
        if config["source"]["pad_to_length"] is not None and self._src_pad is None:
            raise ModelError(f"{self.model_path}: source.pad_to_length needs the padding token "
                             f"{specials['pad']!r} in the source vocabulary")
        self._suppress = self._target_ids(config["target"]["suppress_tokens"],
                                          "config.json: target.suppress_tokens", ModelError)
        self._checked_decoding: dict = {}   # _decoding's results by the call's options
        self._engine = Engine(config, self.files.tensors,
                              self.target_vocab.ids[specials["bos"]],
                              self.target_vocab.ids[specials["eos"]], compute_type,
                              self.target_vocab.ids.get(specials["pad"], -1))
        # the engine holds its own copy of every weight: drop the file mapping, so that the
        # file changing on disk cannot affect this Translator (docs/security.md)
        self.files.tensors = {}
        self.source_tokenizer = load_tokenizer(
            config["source"]["tokenizer"], self.model_path, config["source"]["tokenizer_model"],
            config["source"]["lowercase"])
        self.target_tokenizer = load_tokenizer(
            config["target"]["tokenizer"], self.model_path, config["target"]["tokenizer_model"])
        self._target_ids(config["decoding"]["suppress_tokens"],
                         "config.json: decoding.suppress_tokens", ModelError)
        self.vocab_map = model_vocab_map(self.model_path, self.target_vocab,
                                         config["special_tokens"])

    def load_vocab_map(self, path: str) -> VocabMap:
        """A vocabulary map file (docs/vmap.md) for this model's target vocabulary, to pass
        as translate_batch(use_vmap=...)."""
        return load_vocab_map(path, self.target_vocab, self.config["special_tokens"])

    @property
    def config(self) -> dict:
        return self.files.config

    def _target_ids(self, tokens, where: str, error=ValueError) -> tuple[int, ...]:
        """Ids of target tokens to suppress; the error names any the vocabulary lacks, and
        EOS, which cannot be suppressed."""
        eos = self.config["special_tokens"]["eos"]
        missing = [t for t in tokens if t not in self.target_vocab.ids]
        if missing or eos in tokens:
            raise error(f"{where}: " + (f"not in the target vocabulary: {missing}" if missing
                                        else f"the end token {eos!r} cannot be suppressed"))
        return tuple(self.target_vocab.ids[t] for t in tokens)

    def _attention_constraint(self, value) -> tuple[int, int] | None:
        """The checked (backward, forward) window of attention_constraint, or None."""
        if value is None:
            return None
        if self.config["attention"] is None:
            raise ValueError("attention_constraint needs a model with attention "
                             "(this model's decoder has none)")
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
            raise ValueError(f"attention_constraint must be (backward, forward), got {value!r}")
        backward, forward = value
        for name, number, least in (("backward", backward, 0), ("forward", forward, 1)):
            if isinstance(number, bool) or not isinstance(number, (int, np.integer)) or \
                    number < least or number > 1 << 30:
                raise ValueError(f"attention_constraint {name} window must be an integer >= "
                                 f"{least}, got {number!r}")
        return int(backward), int(forward)

    def _require_tokens(self) -> None:
        if self.config["source"]["kind"] == "features":
            raise ValueError(f"this model reads feature arrays [T, "
                             f"{self.config['source']['feature_size']}] (source.kind "
                             "'features'), not tokens: use translate_features (or rnnsearch "
                             "translate --features FILE)")

    def unknown_tokens(self, tokens: list[str]) -> list[str]:
        """The tokens of `tokens` that the source vocabulary lacks (they become UNK)."""
        self._require_tokens()
        return [t for t in tokens if t not in self.source_vocab.ids]

    def source_ids(self, tokens: list[str], truncate: bool = False) -> list[int]:
        self._require_tokens()
        return self._framed([self.source_vocab.ids.get(t, self._unk) for t in tokens],
                            truncate)

    def _framed(self, ids: list[int], truncate: bool) -> list[int]:
        """Source ids as the encoder reads them: BOS/EOS and padding added as the config
        says; too long is a ValueError unless truncated."""
        src = self.config["source"]
        if not ids:
            return []
        limit = self._source_limit()
        if len(ids) > limit:
            if not truncate:
                raise ValueError(f"source of {len(ids)} tokens is longer than the model allows "
                                 f"({limit}); pass truncate=True to cut it")
            ids = ids[:limit]
        if src["add_bos"]:
            ids.insert(0, self._src_bos)
        if src["add_eos"]:
            ids.append(self._src_eos)
        if src["pad_to_length"] is not None:
            # models trained on fixed-length padded input without a mask read the pads
            padding = [self._src_pad] * (src["pad_to_length"] - len(ids))
            ids = ids + padding if src["padding"] == "post" else padding + ids
        return ids

    def decoding_options(self, **overrides) -> dict:
        """The decoding options a call uses: the model directory's `decoding` section
        (docs/model-format.md), with every option the caller gave (not None) instead."""
        unknown = set(overrides) - set(DECODING_OPTIONS)
        if unknown:
            raise TypeError(f"unknown decoding option(s) {sorted(unknown)}")
        options = dict(self.config["decoding"])
        options.update({k: v for k, v in overrides.items() if v is not None})
        if overrides.get("num_hypotheses") is None and \
                isinstance(options["beam_size"], int) and options["beam_size"] >= 1:
            # the model's n-best default never exceeds a caller's smaller beam
            options["num_hypotheses"] = min(options["num_hypotheses"], options["beam_size"])
        return options

    def _refuse_copy(self, what: str) -> None:
        if self.config["copy"] is not None:
            raise ValueError(f"this model copies source words (OpenNMT-py copy attention), "
                             f"which {what} does not decode: use search='opennmt'")

    def _check_source(self, source, what: str = "source") -> None:
        if isinstance(source, (str, bytes)) or not isinstance(source, (list, tuple)) or not all(
                isinstance(s, (list, tuple)) and all(isinstance(t, str) for t in s)
                for s in source):
            raise TypeError(f"{what} must be a list of token lists (lists of str); "
                            "use translate() for raw strings")

    def _prefix_ids(self, target_prefix, batch: int):
        """Ids of the target prefixes (None, or one token list or None per sentence);
        unknown tokens become the target UNK, with a warning."""
        if target_prefix is None:
            return None
        prefixes = [p if p is not None else [] for p in target_prefix]
        self._check_source(prefixes, "target_prefix")
        if len(prefixes) != batch:
            raise ValueError(f"target_prefix has {len(prefixes)} entries for {batch} sentences")
        unk = self.target_vocab.ids[self.config["special_tokens"]["unk"]]
        unknown = [t for p in prefixes for t in p if t not in self.target_vocab.ids]
        if unknown:
            warnings.warn(f"target_prefix tokens unknown to the model (used as UNK): "
                          f"{sorted(set(unknown))}", stacklevel=3)
        return [[self.target_vocab.ids.get(t, unk) for t in p] for p in prefixes]

    def translate_batch(self, source: list[list[str]], beam_size: int | None = None,
                        num_hypotheses: int | None = None, length_penalty: float | None = None,
                        coverage_penalty: float | None = None,
                        normalize_scores: bool | None = None,
                        min_decoding_length: int | None = None,
                        max_decoding_length: int | None = None,
                        return_scores: bool = False, return_attention: bool = False,
                        truncate: bool = False, suppress_tokens: list[str] | None = None,
                        target_prefix: list[list[str] | None] | None = None,
                        replace_unk: bool | None = None,
                        phrase_table: str | dict | None = None,
                        max_batch_size: int = 0,
                        callback=None,
                        shrinking_beam: bool | None = None,
                        length_normalization: float | None = None,
                        word_penalty: float | None = None,
                        max_length_factor: float | None = None,
                        include_eos_attention: bool = False,
                        attention_constraint: tuple[int, int] | None = None,
                        use_vmap=False,
                        search: str = "default",
                        **opennmt_options) -> list[TranslationResult]:
        """Translate pre-tokenized sentences. Unknown tokens map to UNK; an empty sentence
        gives one empty hypothesis (score 0). Options left at None take the model
        directory's `decoding` defaults (built-in: beam 5, max length 256, no penalties).
        suppress_tokens: target tokens never to produce, besides the model's own
        target.suppress_tokens. target_prefix: per sentence, target tokens decoding must
        start with (CTranslate2's semantics: they are part of the hypothesis and its length,
        their log-probabilities are not part of the score). replace_unk: replace every UNK
        in the output by the source token its attention weighs most, or by that token's
        entry in `phrase_table` (a file of `source|||target` lines, or a dict), as
        OpenNMT-py's -replace_unk does (rnnsearch.replace_unk). max_batch_size: decode at
        most this many sentences per engine call (0: all at once); the results are the same
        either way. callback (beam_size 1): called with a streaming.GenerationStepResult for
        every token as it is decoded; a true return ends that sentence there (CTranslate2's
        callback).

        Marian's search (docs/model-format.md, "Decoding"; also decoding defaults):
        shrinking_beam (a finished hypothesis leaves the beam, which narrows),
        length_normalization a and word_penalty w (score = (log-probability - w * length) /
        length^a, the length counting EOS; Marian's --normalize and --word-penalty),
        max_length_factor (at most ceil(factor * source length) tokens, the source counted
        as the model reads it; --max-length-factor). include_eos_attention: the attention
        has a row for the EOS step too, as Marian's alignments do. attention_constraint:
        (backward, forward) — each step's attention may only fall on [last - backward,
        last + forward) around the previous step's most attended source position `last`
        (starting at 0), as Deep Voice 3 and ESPnet constrain it at decoding time.
        use_vmap (CTranslate2's option; docs/vmap.md): decode each sentence over the target
        tokens its source n-grams map to in the model directory's vmap.txt (True) or in a
        VocabMap (Translator.load_vocab_map), plus UNK, BOS, EOS, the map's always-included
        tokens and its target prefix; with a map that lists every token, the results are
        those of decoding without one, bit for bit.


        search="opennmt": OpenNMT-py's own search with onmt_translate's options by their
        names and its defaults (n_best, length_penalty="wu", alpha, block_ngram_repeat, ...;
        see rnnsearch.opennmt_search and docs/convert-opennmt.md)."""
        self._require_tokens()
        if search == "opennmt":
            if use_vmap is not None and use_vmap is not False:
                raise ValueError("use_vmap is not an option of OpenNMT-py's search "
                                 "(search='opennmt')")
            if attention_constraint is not None:
                raise ValueError("attention_constraint is not an option of OpenNMT-py's "
                                 "search (search='opennmt')")
            from .opennmt_search import from_translate_batch
            results = from_translate_batch(self, source, dict(
                beam_size=beam_size, num_hypotheses=num_hypotheses,
                length_penalty=length_penalty, coverage_penalty=coverage_penalty,
                normalize_scores=normalize_scores, min_decoding_length=min_decoding_length,
                max_decoding_length=max_decoding_length, return_scores=return_scores,
                return_attention=return_attention, truncate=truncate,
                suppress_tokens=suppress_tokens, target_prefix=target_prefix,
                replace_unk=replace_unk, phrase_table=phrase_table, callback=callback,
                shrinking_beam=shrinking_beam, length_normalization=length_normalization,
                word_penalty=word_penalty, max_length_factor=max_length_factor,
                include_eos_attention=include_eos_attention),
                opennmt_options)
            return [TranslationResult(*fields) for fields in results]
        if search != "default":
            raise ValueError(f"search must be 'default' or 'opennmt', got {search!r}")
        if opennmt_options:
            raise TypeError(f"unexpected option(s) {sorted(opennmt_options)} (OpenNMT-py's "
                            "options need search='opennmt')")
        self._refuse_copy("translate_batch without search='opennmt'")
        self._check_source(source)
        decoding, suppress = self._decoding(
            beam_size=beam_size, num_hypotheses=num_hypotheses, length_penalty=length_penalty,
            coverage_penalty=coverage_penalty, normalize_scores=normalize_scores,
            min_decoding_length=min_decoding_length, max_decoding_length=max_decoding_length,
            suppress_tokens=suppress_tokens, replace_unk=replace_unk,
            shrinking_beam=shrinking_beam, length_normalization=length_normalization,
            word_penalty=word_penalty, max_length_factor=max_length_factor)
        constraint = self._attention_constraint(attention_constraint)
        ids = [self.source_ids(list(s), truncate) for s in source]
        prefixes = self._prefix_ids(target_prefix, len(ids))
        candidates = call_candidates(use_vmap, self.vocab_map, self.model_path,
                                     [list(s)[:self._source_limit()] for s in source], prefixes)
        replacing = bool(decoding["replace_unk"])
        if replacing and self.config["attention"] is None:
            raise ValueError("replace_unk needs attention, and this model has none")
        if phrase_table is not None and not replacing:
            raise ValueError("a phrase_table is only used with replace_unk")
        table = load_phrase_table(phrase_table) if isinstance(phrase_table, str) else \
            phrase_table
        raw = self._decode_chunks(self._engine.translate, ids, prefixes, decoding, suppress,
                                  callback, max_batch_size,
                                  return_attention=bool(return_attention or replacing),
                                  eos_attention=include_eos_attention,
                                  attention_constraint=constraint, candidates=candidates)
        unk = self.config["special_tokens"]["unk"]
        results = self._results(raw, [len(i) for i in ids], return_scores,
                                bool(return_attention or replacing))
        if replacing:
            for sentence, result in zip(source, results):
                given = list(sentence)[:self._source_limit()]
                result.hypotheses = [
                    replace_unknown(h, self.given_columns(a, len(given)), given, unk, table)
                    for h, a in zip(result.hypotheses, result.attention)]
                if not return_attention:
                    result.attention = []
        return results

    def translate_features(self, features, return_scores: bool = False,
                           return_attention: bool = False, truncate: bool = False,
                           target_prefix: list[list[str] | None] | None = None,
                           callback=None, max_batch_size: int = 0,
                           attention_constraint: tuple[int, int] | None = None,
                           **decoding) -> list[TranslationResult]:
        """Translate array sources, with the options and results of translate_batch
        (`decoding`: beam_size, num_hypotheses, length_penalty, coverage_penalty,
        normalize_scores, min/max_decoding_length, suppress_tokens, max_batch_size,
        attention_constraint; replace_unk does not apply): feature frames [T, F] (float32 or float64;
        source.kind 'features': speech frames, image regions) or one-hot vectors [T, V]
        (source.kind 'one_hot', read as the tokens they spell, BOS/EOS/padding added as for
        tokens). A list of arrays (lengths
        may differ) or one array [N, T, F]. Attention rows have one column per memory
        position (T, or fewer when the encoder subsamples). Errors name the input at fault
        (features[i]) and what the model expects."""
        from .features import feature_frames, one_hot_ids
        src = self.config["source"]
        if src["kind"] == "ids":
            raise ValueError("this model reads token sequences (source.kind 'ids'), not "
                             "arrays: use translate_batch")
        if "replace_unk" in decoding:
            raise TypeError("replace_unk applies to token sources, not translate_features")
        decoding, suppress = self._decoding(**decoding)
        constraint = self._attention_constraint(attention_constraint)
        if src["kind"] == "one_hot":
            sources = [self._framed(i, truncate) for i in
                       one_hot_ids(features, src["feature_size"], len(self.source_vocab))]
            translate = self._engine.translate
        else:
            sources = feature_frames(features, self.config, truncate)
            translate = self._engine.translate_features
        raw = self._decode_chunks(translate, sources,
                                  self._prefix_ids(target_prefix, len(sources)), decoding,
                                  suppress, callback, max_batch_size,
                                  return_attention=bool(return_attention),
                                  attention_constraint=constraint)
        lengths = [len(source) for source in sources]
        return self._results(raw, lengths, return_scores, bool(return_attention))

    def _decoding(self, **options) -> tuple[dict, tuple[int, ...]]:
        """The decoding options of a call (the model's defaults for those left at None),
        checked (ValueError/TypeError naming the option), and the suppressed target ids.
        Options seen before (the same values of the same types) are not checked again."""
        key = _options_key(options)
        known = self._checked_decoding.get(key) if key is not None else None
        if known is not None:
            return dict(known[0]), known[1]
        decoding, suppress = self._check_decoding(options)
        if key is not None:
            if len(self._checked_decoding) >= _CHECKED_DECODING_KEPT:
                self._checked_decoding.clear()
            self._checked_decoding[key] = (dict(decoding), suppress)
        return decoding, suppress

    def _check_decoding(self, options: dict) -> tuple[dict, tuple[int, ...]]:
        decoding = self.decoding_options(**options)
        beam_size, num_hypotheses = decoding["beam_size"], decoding["num_hypotheses"]
        max_decoding_length = decoding["max_decoding_length"]
        min_decoding_length = decoding["min_decoding_length"]
        length_penalty, coverage_penalty = decoding["length_penalty"], decoding["coverage_penalty"]
        suppress_tokens = decoding["suppress_tokens"]
        length_normalization, word_penalty = (decoding["length_normalization"],
                                              decoding["word_penalty"])
        max_length_factor = decoding["max_length_factor"]
        check_int("beam_size", beam_size, 1, MAX_BEAM)
        check_int("num_hypotheses", num_hypotheses, 1, MAX_BEAM)
        if num_hypotheses > beam_size:
            raise ValueError(f"num_hypotheses ({num_hypotheses}) must not exceed beam_size "
                             f"({beam_size})")
        check_int("max_decoding_length", max_decoding_length, 1, MAX_DECODING_LENGTH)
        check_int("min_decoding_length", min_decoding_length, 0, MAX_DECODING_LENGTH)
        if min_decoding_length > max_decoding_length:
            raise ValueError(f"min_decoding_length ({min_decoding_length}) must not exceed "
                             f"max_decoding_length ({max_decoding_length})")
        for name, value in (("length_penalty", length_penalty),
                            ("coverage_penalty", coverage_penalty),
                            ("length_normalization", length_normalization),
                            ("word_penalty", word_penalty)):
            check_real(name, value, -MAX_ABS_PENALTY, MAX_ABS_PENALTY)
        check_real("max_length_factor", max_length_factor, 0, MAX_ABS_PENALTY)
        if isinstance(suppress_tokens, str) or not isinstance(suppress_tokens, (list, tuple)) \
                or not all(isinstance(t, str) for t in suppress_tokens):
            raise TypeError("suppress_tokens must be a list of token strings")
        suppress = self._suppress + self._target_ids(list(suppress_tokens), "suppress_tokens")
        return decoding, suppress

    def _decode_chunks(self, translate, sources: list, prefixes, decoding: dict,
                       suppress: tuple[int, ...], callback, max_batch_size: int,
                       **engine_options) -> list:
        """Run translate (the engine's translate or translate_features) over the sources
        max_batch_size at a time (0: all at once; the results do not depend on it), each
        chunk's memory checked first; callback (beam_size 1): a
        streaming.GenerationStepResult per token, numbered over the whole call."""
        check_int("max_batch_size", max_batch_size, 0, MAX_BATCH)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        if callback is not None and decoding["beam_size"] != 1:
            raise ValueError(f"callback needs beam_size=1 (beam search knows no token "
                             f"before it ends), got beam_size={decoding['beam_size']}")
        keep_attention = bool(engine_options.get("return_attention")) or \
            decoding["coverage_penalty"] != 0
        candidates = engine_options.pop("candidates", None)
        raw = []
        step = max_batch_size or max(1, len(sources))
        for start in range(0, len(sources), step):
            chunk = sources[start:start + step]
            check_decoding_size(self.config, len(self.target_vocab), len(chunk),
                                decoding["beam_size"], max(map(len, chunk)),
                                decoding["max_decoding_length"], keep_attention,
                                self._engine.decoder_block_floats)
            raw += translate(
                chunk, beam_size=decoding["beam_size"],
                num_hypotheses=decoding["num_hypotheses"],
                min_length=decoding["min_decoding_length"],
                max_length=decoding["max_decoding_length"],
                length_penalty=decoding["length_penalty"],
                coverage_penalty=decoding["coverage_penalty"],
                normalize_scores=bool(decoding["normalize_scores"]),
                threads=self.intra_threads, suppress=suppress,
                prefixes=prefixes[start:start + step] if prefixes is not None else None,
                on_token=None if callback is None else
                streaming.token_reporter(callback, self.target_vocab.tokens, offset=start),
                shrinking_beam=bool(decoding["shrinking_beam"]),
                length_normalization=decoding["length_normalization"],
                word_penalty=decoding["word_penalty"],
                max_length_factor=decoding["max_length_factor"], return_log_prob=True,
                candidates=candidates[start:start + step] if candidates is not None else None,
                **engine_options)
        return raw

    def _results(self, raw, source_lengths: list[int], return_scores: bool,
                 return_attention: bool) -> list[TranslationResult]:
        """The engine's hypotheses as TranslationResults; with return_attention, attention
        always filled (zeros over the memory for an attention-free decoder)."""
        tokens, encoder = self.target_vocab.tokens, self.config["encoder"]
        results = []
        for length, hyps in zip(source_lengths, raw):
            result = TranslationResult([[tokens[i] for i in h[0]] for h in hyps])
            if return_attention:
                width = memory_length(encoder, length) if length else 0
                result.attention = [h[2] if h[2] is not None else
                                    np.zeros((len(h[0]), width), np.float32) for h in hyps]
            if return_scores:
                result.scores = [float(h[1]) for h in hyps]
                result.log_probs = [float(h[3]) for h in hyps]
            results.append(result)
        return results

    def encode(self, source: list[list[str]], return_weights: bool = False,
               truncate: bool = False):
        """Sentence embeddings: for each pre-tokenized sentence, the encoder's
        self-attentive pooling (config encoder.pooling; docs/model-format.md, "pooling") as
        a float32 array [rows, D_m] (flatten it for one vector). With return_weights, also
        the pooling weights [rows, source length] per sentence: (embeddings, weights).
        Sentences must be non-empty; the model must have encoder.pooling."""
        self._check_source(source)
        if self.config["encoder"]["pooling"] is None:
            raise ValueError(f"{self.model_path}: the model has no encoder.pooling to embed "
                             "sentences with")
        ids = [self.source_ids(list(s), truncate) for s in source]
        enc = self.config["encoder"]
        check_embedding_size(len(ids), enc["pooling"]["rows"],
                             enc["hidden_size"] * (2 if enc["bidirectional"] else 1),
                             max(map(len, ids), default=0))
        embeddings, weights = self._engine.encode(ids, return_weights=True)
        embeddings = list(embeddings)
        if not return_weights:
            return embeddings
        return embeddings, [w[:, :len(i)] for w, i in zip(weights, ids)]

    def translate_iterable(self, source, target_prefix=None, max_batch_size: int = 32,
                           batch_type: str = "examples", **options):
        """Translate an iterable of token lists of any length, a window at a time (read
        ahead, sorted by length, batched by max_batch_size examples or tokens); yields the
        results in input order. target_prefix: an iterable of target prefixes read beside
        it (CTranslate2's). Options are those of translate_batch."""
        return streaming.translate_iterable(self, source, target_prefix, max_batch_size,
                                            batch_type, **options)

    def score_iterable(self, source, target, max_batch_size: int = 64,
                       batch_type: str = "examples"):
        """score_batch over two iterables read side by side, a window at a time as
        translate_iterable; yields the ScoringResults in input order."""
        return streaming.score_iterable(self, source, target, max_batch_size, batch_type)

    def generate_tokens(self, source: list[str], **options):
        """Yield streaming.GenerationStepResult for each token of `source`'s greedy
        translation as it is decoded; closing the generator stops the decoding."""
        return streaming.generate_tokens(self, source, **options)

    def score_batch(self, source: list[list[str]], target: list[list[str]]
                    ) -> list[ScoringResult]:
        """The log-probability of each target sentence given its source (forced decoding,
        as CTranslate2's score_batch): per token (the given target tokens, then EOS) and in
        total. The total equals the beam search's total for the same tokens (its score
        without length or coverage penalty). Unknown target tokens are scored as UNK; empty
        sources are refused (they never run through the model)."""
        self._refuse_copy("score_batch")
        self._check_source(source)
        self._check_source(target, "target")
        if len(source) != len(target):
            raise ValueError(f"{len(source)} sources but {len(target)} targets")
        ids = [self.source_ids(list(s)) for s in source]
        unk = self.target_vocab.ids[self.config["special_tokens"]["unk"]]
        target_ids = [[self.target_vocab.ids.get(t, unk) for t in sentence]
                      for sentence in target]
        check_decoding_size(self.config, len(self.target_vocab), len(ids), 1,
                            max(map(len, ids), default=0),
                            max(map(len, target_ids), default=0) + 1, False,
                            self._engine.decoder_block_floats)
        eos = self.config["special_tokens"]["eos"]
        return [ScoringResult(list(sentence) + [eos], [float(x) for x in log_probs], total)
                for sentence, (log_probs, total) in
                zip(target, self._engine.score(ids, target_ids))]

    def tokenize(self, text: str) -> list[str]:
        """A source string -> source tokens, with the model's tokenizer."""
        return self.source_tokenizer.encode(text)

    def detokenize(self, tokens: list[str]) -> str:
        """Target tokens -> a string, with the model's tokenizer."""
        return self.target_tokenizer.decode(tokens)

    def _source_limit(self) -> int:
        """The most source tokens a sentence may have (before BOS/EOS are added)."""
        src = self.config["source"]
        return (src["pad_to_length"] or src["max_length"]) - int(src["add_bos"]) - \
            int(src["add_eos"])

    def attention_labels(self, tokens: list[str]) -> list[str]:
        """What each column of a result's attention stands for: the source tokens as given
        (as the model saw them, truncated to what it accepts with truncate=True), with the
        BOS/EOS/padding tokens the model adds around them."""
        src, specials = self.config["source"], self.config["special_tokens"]
        ids = self.source_ids(list(tokens), truncate=True)
        given = list(tokens)[:self._source_limit()]
        labels = ([specials["bos"]] if src["add_bos"] else []) + given + \
            ([specials["eos"]] if src["add_eos"] else [])
        padding = [specials["pad"]] * (len(ids) - len(labels))
        return labels + padding if src["padding"] == "post" else padding + labels

    def given_columns(self, attention: np.ndarray, source_length: int) -> np.ndarray:
        """The columns of an attention matrix that belong to the `source_length` tokens the
        caller gave: the BOS/EOS/padding the model adds are left out."""
        src = self.config["source"]
        start = int(src["add_bos"])
        if src["pad_to_length"] is not None and src["padding"] == "pre":
            start += attention.shape[1] - source_length - int(src["add_bos"]) - \
                int(src["add_eos"])
        return attention[:, start:start + source_length]

    def hard_alignment(self, attention: np.ndarray, source_length: int) -> list[tuple[int, int]]:
        """(source position, target position) pairs, each target token aligned to the
        source token it attended to most. Positions count the given source tokens only:
        the BOS/EOS/padding the model adds are left out."""
        columns = self.given_columns(attention, source_length)
        if columns.size == 0:
            return []
        return [(int(j), t) for t, j in enumerate(columns.argmax(axis=1))]

    def split_line(self, text: str) -> list[list[str]]:
        """The token sequences the model translates for one line: one, or with
        source.per_word (e.g. the G2P model) one per whitespace-separated word."""
        if self.config["source"]["per_word"]:
            return [self.tokenize(word) for word in text.split()]
        return [self.tokenize(text)]

    def join_words(self, outputs: list[str]) -> str:
        """Inverse of split_line for outputs: per-word results joined with
        target.word_separator."""
        if self.config["source"]["per_word"]:
            return self.config["target"]["word_separator"].join(outputs)
        return outputs[0] if outputs else ""

    def translate(self, texts: list[str], **options) -> list[str]:
        """Translate raw strings with the model's own tokenizers; returns the best
        hypothesis of each, detokenized (per-word models: each word's, joined with the
        word separator). Options are those of translate_batch; sentences (for per-word
        models: words) are decoded max_batch_size at a time (default 32), so one long line
        of a per-word model costs no more memory than many short ones."""
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)) or \
                not all(isinstance(t, str) for t in texts):
            raise TypeError("translate takes a list of strings")
        options.setdefault("max_batch_size", DEFAULT_MAX_BATCH_SIZE)
        units = [self.split_line(t) for t in texts]
        unknown = [t for line in units for unit in line for t in self.unknown_tokens(unit)]
        if unknown:
            warnings.warn("tokens unknown to the model (translated as "
                          f"{self.config['special_tokens']['unk']}): "
                          f"{list(dict.fromkeys(unknown))}", stacklevel=2)
        prefix = options.get("target_prefix")
        if prefix is not None:
            if self.config["source"]["per_word"]:
                raise ValueError("target_prefix is not supported for per-word models")
            options["target_prefix"] = [self.target_tokenizer.encode(p) if isinstance(p, str)
                                        else p for p in prefix]
        results = iter(self.translate_batch([u for line in units for u in line], **options))
        return [self.join_words([self.detokenize(next(results).hypotheses[0]) for _ in line])
                for line in units]
