"""The server's target_prefix, replace_unk and phrase_table fields, below HTTP: the
request schema on a model whose texts are whole sentences (the HTTP tests in
test_serve.py use the per-word G2P model), and the batcher merging requests with and
without prefixes. Answers must be the offline Translator's for the same options."""
import json

import pytest

pytest.importorskip("starlette")

from rnnsearch.serve.batcher import DynamicBatcher, Job  # noqa: E402
from rnnsearch.serve.config import ServerConfig  # noqa: E402
from rnnsearch.serve.schema import RequestError, parse_request, response  # noqa: E402
from sentences import random_sentences  # noqa: E402

CONFIG = ServerConfig(max_decoding_length=20)


@pytest.fixture(scope="module")
def translator(small_translator):
    return small_translator


def _parse(translator, body, streaming=False):
    return parse_request(json.dumps(body).encode(), translator, CONFIG, streaming)


def _decode(translator, parsed):
    results = translator.translate_batch(parsed.sentences, target_prefix=parsed.prefixes,
                                         **parsed.options)
    return response(parsed, translator, results)


def test_texts_prefixes_are_split_by_the_target_tokenizer(translator):
    texts = [" ".join(s) for s in random_sentences(translator, 4, seed=7)]
    vocab = translator.target_vocab.tokens
    prefixes = [f"{vocab[5]} {vocab[6]}", None, "", vocab[9]]
    parsed = _parse(translator, {"texts": texts, "target_prefix": prefixes, "beam_size": 3,
                                 "return_scores": True})
    assert parsed.prefixes == [[vocab[5], vocab[6]], None, [], [vocab[9]]]
    answer = _decode(translator, parsed)
    assert answer["translations"] == translator.translate(texts, target_prefix=prefixes,
                                                          beam_size=3,
                                                          max_decoding_length=20)
    assert answer["translations"][0].split()[:2] == [vocab[5], vocab[6]]


def test_replace_unk_with_an_inline_phrase_table(translator):
    sources = random_sentences(translator, 3, seed=8, shortest=2)
    unk = translator.config["special_tokens"]["unk"]
    # forcing UNK first makes the replacement certain; the table maps one source token
    table = {sources[0][0]: "REPLACED", "never-seen": "x"}
    body = {"tokens": sources, "target_prefix": [[unk]] * 3, "replace_unk": True,
            "phrase_table": table, "return_attention": True}
    answer = _decode(translator, _parse(translator, body))
    expected = translator.translate_batch(sources, target_prefix=[[unk]] * 3,
                                          replace_unk=True, phrase_table=table,
                                          return_attention=True, max_decoding_length=20)
    assert answer["translations"] == [r.hypotheses[0] for r in expected]
    for source, result, translation in zip(sources, expected, answer["translations"]):
        # independent of replace_unk.py: the most attended given source token (column 0
        # is not BOS here: the small model adds none), through the table
        attended = source[int(result.attention[0][0, :len(source)].argmax())]
        assert translation[0] == table.get(attended, attended)
        assert unk not in translation[:1]


@pytest.mark.parametrize("body,message", [
    ({"texts": ["s5"], "target_prefix": [["t5"]]}, "target_prefix[0] must be a string"),
    ({"tokens": [["s5"]], "target_prefix": ["t5"]}, "target_prefix[0] must be a list of strings"),
    ({"tokens": [["s5"]], "target_prefix": [["t5"]] * 2}, "one entry per input (1)"),
    ({"tokens": [["s5"]], "target_prefix": None}, "one entry per input"),
    ({"tokens": [["s5"]], "target_prefix": [["zz-unknown", "zz-unknown"]]},
     'target_prefix[0]: not in the target vocabulary: ["zz-unknown"]'),
    ({"tokens": [["s5"], ["s6"]], "target_prefix": [None, ["</s>"]]},
     "target_prefix[1] contains the end token"),
    ({"tokens": [["s5"]], "target_prefix": [["<unk>"] * 21]},
     "target_prefix[0] has 21 tokens, more than max_decoding_length (20)"),
    ({"tokens": [["s5"]], "target_prefix": [["<unk>"] * 4], "max_decoding_length": 3},
     "more than max_decoding_length (3)"),
    ({"tokens": [["s5"]], "replace_unk": 1}, "replace_unk must be true or false"),
    ({"tokens": [["s5"]], "replace_unk": True, "phrase_table": "/etc/passwd"},
     "the server reads no files"),
    ({"tokens": [["s5"]], "replace_unk": True, "phrase_table": [["a", "b"]]},
     "phrase_table must be an object"),
    ({"tokens": [["s5"]], "replace_unk": True, "phrase_table": {"a": ["b"]}},
     'phrase_table["a"] must be a string'),
    ({"tokens": [["s5"]], "phrase_table": {"a": "b"}}, "only used with replace_unk"),
])
def test_bad_prefixes_and_phrase_tables_name_the_field(translator, body, message):
    with pytest.raises(RequestError) as caught:
        _parse(translator, body)
    assert caught.value.status == 400 and message in caught.value.message


def test_a_prefix_as_long_as_max_decoding_length_is_the_whole_translation(translator):
    vocab = translator.target_vocab.tokens[4:]
    prefix = [vocab[i % len(vocab)] for i in range(5)]
    parsed = _parse(translator, {"tokens": [["s5", "s6"]], "target_prefix": [prefix],
                                 "max_decoding_length": 5})
    assert _decode(translator, parsed)["translations"] == [prefix]


def test_batcher_merges_requests_with_and_without_prefixes(translator):
    sources = random_sentences(translator, 8, seed=9)
    vocab = translator.target_vocab.tokens[4:]
    prefixes = [[vocab[i], vocab[i + 1]] if i % 3 else None for i in range(4)]
    batches = []
    batcher = DynamicBatcher(translator, max_batch_size=8, max_latency_ms=10_000,
                             on_batch=lambda s, r, t: batches.append((s, r)))
    jobs = [batcher.submit(Job(sources[:4], {"beam_size": 2}, prefixes=prefixes)),
            batcher.submit(Job(sources[4:], {"beam_size": 2}))]
    results = [r for job in jobs for r in job.future.result(timeout=60)]
    batcher.close()
    assert batches == [(8, 2)]
    expected = translator.translate_batch(sources, beam_size=2,
                                          target_prefix=prefixes + [None] * 4)
    assert [r.hypotheses for r in results] == [r.hypotheses for r in expected]
