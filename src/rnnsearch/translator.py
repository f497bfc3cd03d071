"""The Python API: Translator and TranslationResult (CTranslate2-style)."""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from .errors import ModelError
from .model_dir import ModelFiles, load_model_dir
from .tokenizers import detokenize, tokenize

DEFAULT_MODEL_NAME = "g2p-en"


def default_model_path() -> str:
    """The embedded default model: the repository's models/, installed as the package
    rnnsearch.models (setup.py)."""
    return str(resources.files("rnnsearch.models").joinpath(DEFAULT_MODEL_NAME))

COMPUTE_TYPES = ("float32", "int8")


@dataclass
class TranslationResult:
    hypotheses: list[list[str]]
    scores: list[float] = field(default_factory=list)
    attention: list[np.ndarray] = field(default_factory=list)


class Translator:
    """Loads a model directory once; translate_batch and translate may be called from
    several threads at once (the engine releases the GIL and shares no mutable state)."""

    def __init__(self, model_path: str | None = None, intra_threads: int = 1,
                 compute_type: str = "float32"):
        from ._engine import Engine  # compiled; imported here so model tools work without it

        if compute_type not in COMPUTE_TYPES:
            raise ValueError(f"compute_type {compute_type!r} is not supported; "
                             f"choose one of {list(COMPUTE_TYPES)}")
        if not isinstance(intra_threads, int) or intra_threads < 1:
            raise ValueError(f"intra_threads must be a positive integer, got {intra_threads!r}")
        self.model_path = model_path or default_model_path()
        self.intra_threads = intra_threads
        self.compute_type = compute_type
        self.files: ModelFiles = load_model_dir(self.model_path)
        config = self.files.config
        specials = config["special_tokens"]
        self.source_vocab, self.target_vocab = self.files.source_vocab, self.files.target_vocab
        self._unk = self.source_vocab.ids[specials["unk"]]
        self._src_bos = self.source_vocab.ids.get(specials["bos"])
        self._src_eos = self.source_vocab.ids.get(specials["eos"])
        self._src_pad = self.source_vocab.ids.get(specials["pad"])
        if config["source"]["pad_to_length"] is not None and self._src_pad is None:
            raise ModelError(f"{self.model_path}: source.pad_to_length needs the padding token "
                             f"{specials['pad']!r} in the source vocabulary")
        self._suppress = self._target_ids(config["target"]["suppress_tokens"],
                                          "config.json: target.suppress_tokens", ModelError)
        self._engine = Engine(config, self.files.tensors,
                              self.target_vocab.ids[specials["bos"]],
                              self.target_vocab.ids[specials["eos"]], compute_type)

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

    def unknown_tokens(self, tokens: list[str]) -> list[str]:
        """The tokens of `tokens` that the source vocabulary lacks (they become UNK)."""
        return [t for t in tokens if t not in self.source_vocab.ids]

    def source_ids(self, tokens: list[str], truncate: bool = False) -> list[int]:
        src = self.config["source"]
        if not tokens:
            return []
        ids = [self.source_vocab.ids.get(t, self._unk) for t in tokens]
        extra = int(src["add_bos"]) + int(src["add_eos"])
        limit = (src["pad_to_length"] or src["max_length"]) - extra
        if len(ids) > limit:
            if not truncate:
                raise ValueError(f"source of {len(ids)} tokens is longer than the model allows "
                                 f"({limit}); pass truncate=True (CLI: --truncate) to cut it")
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

    def translate_batch(self, source: list[list[str]], beam_size: int = 5,
                        num_hypotheses: int = 1, length_penalty: float = 0.0,
                        coverage_penalty: float = 0.0, normalize_scores: bool = False,
                        min_decoding_length: int = 0, max_decoding_length: int = 256,
                        return_scores: bool = False, return_attention: bool = False,
                        truncate: bool = False,
                        suppress_tokens: list[str] = (),
                        attention_constraint: tuple[int, int] | None = None
                        ) -> list[TranslationResult]:
        """Translate pre-tokenized sentences. Unknown tokens map to UNK; an empty sentence
        gives one empty hypothesis (score 0). suppress_tokens: target tokens never to
        produce, besides the model's own target.suppress_tokens. attention_constraint:
        (backward, forward) — each step's attention may only fall on [last - backward,
        last + forward) around the previous step's most attended source position `last`
        (starting at 0), as Deep Voice 3 and ESPnet constrain it at decoding time."""
        if isinstance(source, (str, bytes)) or not all(
                isinstance(s, (list, tuple)) and all(isinstance(t, str) for t in s)
                for s in source):
            raise TypeError("source must be a list of token lists (lists of str); "
                            "use translate() for raw strings")
        for name, value in (("beam_size", beam_size), ("num_hypotheses", num_hypotheses),
                            ("max_decoding_length", max_decoding_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if num_hypotheses > beam_size:
            raise ValueError(f"num_hypotheses ({num_hypotheses}) must not exceed beam_size "
                             f"({beam_size})")
        if not isinstance(min_decoding_length, int) or not \
                0 <= min_decoding_length <= max_decoding_length:
            raise ValueError("min_decoding_length must be between 0 and max_decoding_length")
        for name, value in (("length_penalty", length_penalty),
                            ("coverage_penalty", coverage_penalty)):
            if not np.isfinite(value):
                raise ValueError(f"{name} must be finite")
        if isinstance(suppress_tokens, str):
            raise TypeError("suppress_tokens must be a list of tokens")
        suppress = self._suppress + self._target_ids(list(suppress_tokens), "suppress_tokens")
        constraint = self._attention_constraint(attention_constraint)
        ids = [self.source_ids(list(s), truncate) for s in source]
        raw = self._engine.translate(
            ids, beam_size=beam_size, num_hypotheses=num_hypotheses,
            min_length=min_decoding_length, max_length=max_decoding_length,
            length_penalty=length_penalty, coverage_penalty=coverage_penalty,
            normalize_scores=normalize_scores, return_attention=return_attention,
            threads=self.intra_threads, suppress=suppress, attention_constraint=constraint)
        tokens = self.target_vocab.tokens
        results = []
        for src_ids, hyps in zip(ids, raw):
            result = TranslationResult([[tokens[i] for i in h[0]] for h in hyps])
            if return_scores:
                result.scores = [float(h[1]) for h in hyps]
            if return_attention:
                result.attention = [h[2] if h[2] is not None else
                                    np.zeros((len(h[0]), len(src_ids)), np.float32)
                                    for h in hyps]
            results.append(result)
        return results

    def tokenize(self, text: str) -> list[str]:
        src = self.config["source"]
        return tokenize(text, src["tokenizer"], src["lowercase"])

    def detokenize(self, tokens: list[str]) -> str:
        return detokenize(tokens, self.config["target"]["tokenizer"])

    def hard_alignment(self, attention: np.ndarray, source_length: int) -> list[tuple[int, int]]:
        """(source position, target position) pairs, each target token aligned to the
        source token it attended to most. Positions count the given source tokens only:
        the BOS/EOS/padding the model adds are left out."""
        src = self.config["source"]
        start = int(src["add_bos"])
        if src["pad_to_length"] is not None and src["padding"] == "pre":
            start += attention.shape[1] - source_length - int(src["add_bos"]) - \
                int(src["add_eos"])
        columns = attention[:, start:start + source_length]
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
        word separator). Options are those of translate_batch."""
        if isinstance(texts, str):
            raise TypeError("translate takes a list of strings")
        units = [self.split_line(t) for t in texts]
        results = iter(self.translate_batch([u for line in units for u in line], **options))
        return [self.join_words([self.detokenize(next(results).hypotheses[0]) for _ in line])
                for line in units]
