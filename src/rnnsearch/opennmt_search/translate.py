"""Translating with OpenNMT-py's own search: `Translator.translate_batch(source,
search="opennmt", **onmt_translate_options)` lands here."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np

from ..replace_unk import load_phrase_table, replace_unknown
from .batches import max_lengths, onmt_batches
from .copy_vocab import dynamic_vocabulary, output_tokens
from .options import OpenNMTOptions, resolve

_LENGTH = {"none": 0, "avg": 1, "wu": 2}
_COVERAGE = {"none": 0, "wu": 1, "summary": 2}
_MASK64 = (1 << 64) - 1


def _check_against_model(translator, o: OpenNMTOptions) -> None:
    config = translator.config
    has_attention = config["attention"] is not None
    has_copy = config["copy"] is not None
    if o.copy_attn is not None and o.copy_attn != has_copy:
        raise ValueError("copy_attn: this model " + ("copies source words" if has_copy else
                                                     "has no copy generator"))
    if o.coverage_penalty != "none" and not has_attention:
        raise ValueError("coverage_penalty: Coverage penalty requires an attentional decoder "
                         "(this model has no attention)")
    if o.replace_unk and not has_attention:
        raise ValueError("replace_unk requires an attentional decoder (this model has no "
                         "attention)")


def _seeds(seed: int, count: int) -> list[int]:
    """One random stream per sentence of the input, so that a sentence's samples do not
    depend on its batch; seed -1 draws a fresh one."""
    base = int.from_bytes(os.urandom(8), "little") if seed < 0 else seed
    return [(base + (i + 1) * 0x9E3779B97F4A7C15) & _MASK64 for i in range(count)]


def _engine_options(o: OpenNMTOptions, unk_id: int, return_attention: bool) -> dict:
    return {"version": o.opennmt_version, "beam_size": o.beam_size, "n_best": o.n_best,
            "min_length": o.min_length, "length_penalty": _LENGTH[o.length_penalty],
            "alpha": float(o.alpha), "coverage_penalty": _COVERAGE[o.coverage_penalty],
            "beta": float(o.beta), "stepwise_penalty": o.stepwise_penalty,
            "block_ngram_repeat": o.block_ngram_repeat, "ratio": float(o.ratio),
            "ban_unk": o.ban_unk_token, "unk_id": unk_id, "sampling": o.sampling,
            "top_k": o.random_sampling_topk, "top_p": float(o.random_sampling_topp),
            "temperature": float(o.random_sampling_temp), "per_sentence": o.per_sentence,
            "return_attention": return_attention}


def translate(translator, source: list[list[str]], return_scores: bool = False,
              return_attention: bool = False, truncate: bool = False, random_draws=None,
              stats: dict | None = None, **flags) -> list:
    """Decode `source` (token lists) as onmt_translate would with `flags`; returns per
    sentence (hypotheses best first, n_best of them; their scores; their attention), the
    fields of a TranslationResult, the lists empty unless asked for.
    random_draws: for sampling, each sentence's uniform draws in [0, 1) in the order its
    rows use them (one per row and step), instead of the engine's own: replays another
    sampler's draws.
    stats: a dict whose "decoded_rows" becomes the rows the decoder stepped over all
    batches (the work, for benchmarks' floors)."""
    o = resolve(flags, (translator.config["opennmt"] or {}).get("release"))
    if random_draws is not None and (not o.sampling or len(random_draws) != len(source)):
        raise ValueError("random_draws: one list per sentence, for sampling only")
    _check_against_model(translator, o)
    specials = translator.config["special_tokens"]
    target = translator.target_vocab
    unk_id = target.ids[specials["unk"]]
    ignore = [target.ids.get(t, 0) for t in o.ignore_when_blocking]  # unknown: id 0, as theirs
    ids = [translator.source_ids(list(s), truncate) for s in source]
    copy = translator.config["copy"] is not None
    vocabularies = [dynamic_vocabulary(list(s), specials["unk"], specials["pad"], target.ids)
                    if copy and s else None for s in source]
    seeds = _seeds(o.seed, len(source)) if o.sampling else None
    engine_options = _engine_options(o, unk_id, return_attention or o.replace_unk)
    results = [([[]], [0.0] if return_scores else [],   # an empty source: one empty result
                [np.zeros((0, len(i)), np.float32)] if return_attention else []) for i in ids]
    table = load_phrase_table(o.phrase_table) if o.phrase_table else None
    present = [b for b, i in enumerate(ids) if i]
    lengths = [len(ids[b]) for b in present]

    def decode(members):
        options = dict(engine_options, max_lengths=max_lengths(o, [len(ids[b]) for b in members]))
        dynamic = None
        if copy:
            dynamic = ([vocabularies[b].source_map for b in members],
                       [vocabularies[b].collapse for b in members],
                       [len(vocabularies[b].words) for b in members])
        work = {}
        raw = translator._engine.translate_opennmt(
            [ids[b] for b in members], options, ignore=ignore,
            seeds=[seeds[b] for b in members] if seeds else None, copy=dynamic,
            draws=[random_draws[b] for b in members] if random_draws is not None else None,
            stats=work)
        return members, raw, work["decoded_rows"]

    batches = [[present[i] for i in batch] for batch in
               onmt_batches(lengths, o.opennmt_version, o.batch_size, o.batch_type)]
    # the batches are independent: intra_threads decodes several at once (the engine
    # releases the GIL), with the results of one at a time; one thread decodes them here,
    # without starting a thread per call
    workers = max(1, min(translator.intra_threads, len(batches)))
    decoded_rows = 0
    with ThreadPoolExecutor(max_workers=workers) if workers > 1 else nullcontext() as pool:
        for members, raw, rows in (pool.map if pool else map)(decode, batches):
            decoded_rows += rows
            for b, (width, hyps) in zip(members, raw):
                results[b] = _result(translator, source[b], hyps, vocabularies[b],
                                     return_scores, return_attention, o, table)
    if stats is not None:
        stats["decoded_rows"] = decoded_rows
    return results


def _replacements(translator, tokens, o: OpenNMTOptions) -> list[str]:
    """What -replace_unk puts for a source position: the source token (2.x), or its
    source-vocabulary token (3.x: an unknown source word gives <unk> back)."""
    if o.opennmt_version < 3:
        return list(tokens)
    unk = translator.config["special_tokens"]["unk"]
    return [t if t in translator.source_vocab.ids else unk for t in tokens]


def _result(translator, tokens, hyps, vocabulary, return_scores, return_attention, o,
            table):
    specials = translator.config["special_tokens"]
    eos = translator.target_vocab.ids[specials["eos"]]
    hypotheses, scores, attentions = [], [], []
    for ids, score, attention, cut in hyps:
        if eos in ids:  # the hypothesis stops at its EOS (OpenNMT-py's _build_target_tokens)
            ids = ids[:ids.index(eos)]
        words = output_tokens(ids, translator.target_vocab.tokens, vocabulary)
        if o.replace_unk:
            # the attention columns OpenNMT-py keeps for this hypothesis, then the source's
            kept = np.array(attention[:len(ids), :len(tokens)], dtype=np.float32)
            kept[:, min(cut, len(tokens)):] = -np.inf
            words = replace_unknown(words, kept, _replacements(translator, tokens, o),
                                    specials["unk"], table)
        hypotheses.append(words)
        if return_scores:
            scores.append(float(score))
        if return_attention:
            attentions.append(np.ascontiguousarray(attention[:len(ids), :len(tokens)]))
    return hypotheses, scores, attentions
