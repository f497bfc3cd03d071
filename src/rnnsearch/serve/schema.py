"""The JSON of POST /translate and /translate/stream: requests parsed and checked down to
every sentence before anything is queued (so a bad request never reaches a batch it
would share with others), and results turned into response objects.

Request: {"texts": [str, ...]} or {"tokens": [[str, ...], ...]}, plus any of
translate_batch's decoding options (beam_size, num_hypotheses, length_penalty,
coverage_penalty, normalize_scores, min_decoding_length, max_decoding_length, truncate,
suppress_tokens, replace_unk), the outputs wanted (return_scores, return_alignment, and
for tokens return_attention), "target_prefix" (one per input, null for none: a string for
texts, which the model's target tokenizer splits, a token list for tokens) and
"phrase_table" (with replace_unk: an inline {source token: replacement} object; never a
path: the server reads no file a client names).

Response: {"translations": [...]} (strings for texts, token lists for tokens), with
"scores", "alignments" ([[source, target], ...] per input) and "attention" when asked,
and "n_best" (per input, the num_hypotheses best, each with the same fields) when
num_hypotheses > 1.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ..lines import line_hypothesis
from .config import ServerConfig


class RequestError(Exception):
    """A request the server refuses: HTTP status and a message naming the problem."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# name -> JSON type; the decoding options go to translate_batch as they are
DECODING_OPTIONS = {"beam_size": int, "num_hypotheses": int, "length_penalty": float,
                    "coverage_penalty": float, "normalize_scores": bool,
                    "min_decoding_length": int, "max_decoding_length": int,
                    "truncate": bool, "suppress_tokens": list, "replace_unk": bool}
OUTPUT_OPTIONS = {"return_scores": bool, "return_alignment": bool, "return_attention": bool}
INPUTS = ("texts", "tokens")
FIELDS = INPUTS + tuple(DECODING_OPTIONS) + ("phrase_table", "target_prefix") + \
    tuple(OUTPUT_OPTIONS)
TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false",
              list: "a list of strings"}


@dataclass
class TranslateRequest:
    kind: str                       # "texts" or "tokens"
    lines: list[list[list[str]]]    # per input, its sentences (words of per-word models)
    options: dict                   # translate_batch keyword arguments
    return_scores: bool = False
    return_alignment: bool = False
    return_attention: bool = False
    per_word: bool = False          # texts split into words (per-word models)
    prefixes: list | None = None    # per sentence, its target prefix tokens or None

    @property
    def sentences(self) -> list[list[str]]:
        return [unit for line in self.lines for unit in line]

    def positions(self) -> list[tuple[int, int]]:
        """(input index, word index) of every sentence, in order."""
        return [(i, part) for i, line in enumerate(self.lines) for part in range(len(line))]


def _reject_constant(name: str):
    raise RequestError(400, f"invalid JSON: {name} is not a number JSON allows")


def load_json(body: bytes) -> dict:
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:   # UnicodeDecodeError is a ValueError
        raise RequestError(400, f"invalid JSON: {error}") from None
    if not isinstance(value, dict):
        raise RequestError(400, "the request body must be a JSON object")
    return value


def _check_type(name: str, value, kind) -> None:
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is list:
        ok = isinstance(value, list) and all(isinstance(t, str) for t in value)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise RequestError(400, f"{name} must be {TYPE_NAMES[kind]}, got {json.dumps(value)[:80]}")


def _inputs(body: dict) -> tuple[str, list]:
    given = [name for name in INPUTS if name in body]
    if len(given) != 1:
        raise RequestError(400, 'give either "texts" (a list of strings) or "tokens" (a list '
                                'of token lists)' + (", not both" if given else ""))
    kind, values = given[0], body[given[0]]
    if not isinstance(values, list):
        raise RequestError(400, f"{kind} must be a list")
    for i, value in enumerate(values):
        if kind == "texts" and not isinstance(value, str):
            raise RequestError(400, f"texts[{i}] must be a string")
        if kind == "tokens" and not (isinstance(value, list) and
                                     all(isinstance(t, str) for t in value)):
            raise RequestError(400, f"tokens[{i}] must be a list of strings")
    return kind, values


def parse_request(body: bytes, translator, config: ServerConfig,
                  streaming: bool = False) -> TranslateRequest:
    """Every check a request gets: JSON, fields and their types, the server's limits, the
    decoding options (by translate_batch's own checks) and every sentence's length."""
    data = load_json(body)
    unknown = [name for name in data if name not in FIELDS]
    if unknown:
        raise RequestError(400, f"unknown field {unknown[0]!r}; known fields: "
                                f"{', '.join(FIELDS)}")
    kind, values = _inputs(data)
    for name, kind_of in {**DECODING_OPTIONS, **OUTPUT_OPTIONS}.items():
        if name in data:
            _check_type(name, data[name], kind_of)
    options = {name: data[name] for name in DECODING_OPTIONS if name in data}
    if "phrase_table" in data:
        options["phrase_table"] = _phrase_table(data["phrase_table"])
    outputs = {name: data.get(name, False) for name in OUTPUT_OPTIONS}
    if outputs["return_attention"] and kind == "texts":
        raise RequestError(400, "return_attention needs tokens input (for texts ask for "
                                "return_alignment)")
    if streaming:
        if options.setdefault("beam_size", 1) != 1 or "num_hypotheses" in options:
            raise RequestError(400, "streaming decodes greedily: beam_size must be 1 and "
                                    "num_hypotheses is not an option")
    _check_limits(options, config)
    options["return_scores"] = outputs["return_scores"]
    options["return_attention"] = outputs["return_attention"] or outputs["return_alignment"]
    try:
        translator.translate_batch([], **options)    # the options' own checks, no decoding
    except (ValueError, TypeError) as error:
        raise RequestError(400, str(error)) from None

    lines = [translator.split_line(text) for text in values] if kind == "texts" else \
        [[list(tokens)] for tokens in values]
    count = sum(len(line) for line in lines)
    if count > config.max_sentences:
        unit = "words" if kind == "texts" and translator.config["source"]["per_word"] \
            else "sentences"
        raise RequestError(413, f"{count} {unit} in one request; the server takes at most "
                                f"{config.max_sentences} (--max-sentences)")
    truncate = options.get("truncate", False)
    for i, line in enumerate(lines):
        for unit in line:
            try:
                translator.source_ids(unit, truncate)
            except ValueError as error:
                raise RequestError(400, f"{kind}[{i}]: {error}") from None
    per_word = kind == "texts" and bool(translator.config["source"]["per_word"])
    prefixes = target_prefixes(data, kind, len(values), per_word, translator,
                               options["max_decoding_length"])
    return TranslateRequest(kind, lines, options, **outputs, per_word=per_word,
                            prefixes=prefixes)


def _phrase_table(table) -> dict:
    """An inline phrase table, {source token: replacement}. A string is refused: it would
    be a path on the server, and a client must not make the server read its files."""
    if isinstance(table, str):
        raise RequestError(400, "phrase_table must be an object {source token: replacement}; "
                                "the server reads no files, so a path is not accepted")
    if not isinstance(table, dict):
        raise RequestError(400, f"phrase_table must be an object {{source token: "
                                f"replacement}}, got {json.dumps(table)[:80]}")
    for source, replacement in table.items():
        if not isinstance(replacement, str):
            raise RequestError(400, f"phrase_table[{json.dumps(source)[:40]}] must be a "
                                    f"string, got {json.dumps(replacement)[:80]}")
    return table


def target_prefixes(data: dict, kind: str, count: int, per_word: bool, translator,
                    max_decoding_length: int) -> list | None:
    """The request's target prefixes as token lists (None where an input has none), each
    checked: known target tokens, no end token, at most max_decoding_length tokens (a
    longer prefix could only come back cut, which no client means to ask for)."""
    if "target_prefix" not in data:
        return None
    given = data["target_prefix"]
    if not isinstance(given, list) or len(given) != count:
        raise RequestError(400, f"target_prefix must be a list with one entry per input "
                                f"({count}), null for none")
    if per_word:
        raise RequestError(400, "target_prefix is not supported with texts for a per-word "
                                "model (its words decode separately); give tokens")
    vocab = translator.target_vocab.ids
    eos = translator.config["special_tokens"]["eos"]
    prefixes = []
    for i, prefix in enumerate(given):
        if prefix is None:
            prefixes.append(None)
            continue
        if kind == "texts":
            if not isinstance(prefix, str):
                raise RequestError(400, f"target_prefix[{i}] must be a string or null")
            prefix = translator.target_tokenizer.encode(prefix)
        elif not (isinstance(prefix, list) and all(isinstance(t, str) for t in prefix)):
            raise RequestError(400, f"target_prefix[{i}] must be a list of strings or null")
        unknown = list(dict.fromkeys(t for t in prefix if t not in vocab))
        if unknown:
            raise RequestError(400, f"target_prefix[{i}]: not in the target vocabulary: "
                                    f"{json.dumps(unknown[:10])[:200]}")
        if eos in prefix:
            raise RequestError(400, f"target_prefix[{i}] contains the end token {eos!r}")
        if len(prefix) > max_decoding_length:
            raise RequestError(400, f"target_prefix[{i}] has {len(prefix)} tokens, more than "
                                    f"max_decoding_length ({max_decoding_length})")
        prefixes.append(prefix)
    return prefixes


def _check_limits(options: dict, config: ServerConfig) -> None:
    if options.get("beam_size", 1) > config.max_beam_size:
        raise RequestError(400, f"beam_size {options['beam_size']} is above the server's "
                                f"limit {config.max_beam_size} (--max-beam-size)")
    options.setdefault("max_decoding_length", min(256, config.max_decoding_length))
    if options["max_decoding_length"] > config.max_decoding_length:
        raise RequestError(400, f"max_decoding_length {options['max_decoding_length']} is "
                                f"above the server's limit {config.max_decoding_length} "
                                "(--max-decoding-length)")


def _finite(score: float) -> float | None:
    return score if math.isfinite(score) else None


def _entry(request: TranslateRequest, translator, line: list[list[str]], results: list,
           i: int) -> dict:
    """The i-th hypothesis of one input as a response entry."""
    entry = {}
    if request.kind == "texts":
        text, score, pairs = line_hypothesis(translator, line, results, i,
                                             request.return_scores, request.return_alignment)
        entry["translation"] = text
    elif i >= len(results[0].hypotheses):   # a search that finished nothing (all -inf)
        entry["translation"], score, pairs = [], float("-inf"), []
        if request.return_attention:
            entry["attention"] = []
    else:
        result = results[0]
        entry["translation"] = result.hypotheses[i]
        score = result.scores[i] if request.return_scores else 0.0
        if request.return_alignment:
            pairs = translator.hard_alignment(result.attention[i], len(line[0]))
        if request.return_attention:
            entry["attention"] = result.attention[i].tolist()
    if request.return_scores:
        entry["score"] = _finite(score)
    if request.return_alignment:
        entry["alignment"] = [list(pair) for pair in pairs]
    return entry


def response(request: TranslateRequest, translator, results: list) -> dict:
    """The response object for a request's TranslationResults (in sentence order)."""
    out = {"translations": []}
    for key, wanted in (("scores", request.return_scores),
                        ("alignments", request.return_alignment),
                        ("attention", request.return_attention)):
        if wanted:
            out[key] = []
    n_best = request.options.get("num_hypotheses", 1)
    if n_best > 1:
        out["n_best"] = []
    start = 0
    for line in request.lines:
        line_results = results[start:start + len(line)]
        start += len(line)
        available = max(1, min((len(r.hypotheses) for r in line_results), default=1))
        entries = [_entry(request, translator, line, line_results, i)
                   for i in range(min(n_best, available))]
        for key, value in entries[0].items():
            out[key + "s" if key != "attention" else key].append(value)
        if n_best > 1:
            out["n_best"].append(entries)
    return out


def step_event(request: TranslateRequest, positions: list[tuple[int, int]], sentence: int,
               step) -> dict:
    """The data of one streamed token: which input (and word, for per-word models) it
    belongs to, and the GenerationStepResult's fields."""
    index, part = positions[sentence]
    event = {"index": index, "step": step.step, "token": step.token,
             "token_id": step.token_id, "log_prob": _finite(step.log_prob),
             "is_last": step.is_last}
    if request.per_word:
        event["word"] = part
    return event
