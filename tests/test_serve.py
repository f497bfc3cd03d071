"""`rnnsearch serve` as a user runs it: the real server process (uvicorn) on a free port,
talked to over HTTP with httpx. Answers must equal the offline Translator's, under many
concurrent clients too; streaming, every kind of bad request, limits, timeouts, and a
shutdown with requests in flight that loses none."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from rnnsearch import Translator  # noqa: E402

WORDS = ("attention is all you need the quick brown fox jumps over lazy dog "
         "translation decoder encoder beam search greedy").split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *args):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rnnsearch", "serve", "--port", str(self.port),
             "--log-level", "warning", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("server exited: " + self.process.stdout.read())
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start within 60 s")
            time.sleep(0.1)

    def post(self, path, body, **kwargs):
        content = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return httpx.post(self.url + path, content=content, timeout=60, **kwargs)

    def metric(self, name: str, **labels) -> float:
        """The sum of the samples called `name` that carry `labels`."""
        from prometheus_client.parser import text_string_to_metric_families
        text = httpx.get(self.url + "/metrics", timeout=10).text
        return sum(sample.value for family in text_string_to_metric_families(text)
                   for sample in family.samples if sample.name == name and
                   all(sample.labels.get(k) == v for k, v in labels.items()))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@pytest.fixture(scope="module")
def server():
    s = Server("--workers", "2", "--max-batch-size", "16", "--max-latency-ms", "20",
               "--max-sentences", "64", "--max-request-bytes", "20000", "--max-beam-size", "8",
               "--max-decoding-length", "100")
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def offline():
    return Translator()


def _texts(n, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 5))) for _ in range(n)]


def test_texts_match_offline(server, offline):
    texts = _texts(12) + [""]
    got = server.post("/translate", {"texts": texts, "beam_size": 5, "return_scores": True})
    assert got.status_code == 200, got.text
    answer = got.json()
    assert answer["translations"] == offline.translate(texts, beam_size=5)
    for text, score in zip(texts, answer["scores"]):
        words = offline.split_line(text)
        expected = sum(r.scores[0] for r in offline.translate_batch(
            words, beam_size=5, return_scores=True)) if words else 0.0
        assert score == pytest.approx(expected, abs=1e-9)


def test_tokens_with_nbest_attention_and_alignment_match_offline(server, offline):
    tokens = [list(w) for w in WORDS[:6]]
    got = server.post("/translate", {"tokens": tokens, "beam_size": 4, "num_hypotheses": 3,
                                     "return_scores": True, "return_attention": True,
                                     "return_alignment": True, "length_penalty": 0.6})
    assert got.status_code == 200, got.text
    answer = got.json()
    expected = offline.translate_batch(tokens, beam_size=4, num_hypotheses=3,
                                       return_scores=True, return_attention=True,
                                       length_penalty=0.6)
    assert answer["translations"] == [r.hypotheses[0] for r in expected]
    assert answer["scores"] == [r.scores[0] for r in expected]      # exact: JSON round-trips
    assert answer["attention"] == [r.attention[0].tolist() for r in expected]
    for source, result, pairs in zip(tokens, expected, answer["alignments"]):
        assert pairs == [[j, t] for t, j in enumerate(result.attention[0][:, 1:-1].argmax(1))
                         ] if offline.config["source"]["add_bos"] else pairs
        assert len(pairs) == len(result.hypotheses[0])
    for entries, result in zip(answer["n_best"], expected):
        assert [e["translation"] for e in entries] == result.hypotheses
        assert [e["score"] for e in entries] == result.scores


def test_many_concurrent_clients_get_offline_results_in_merged_batches(server, offline):
    texts = _texts(160, seed=1)
    beams = [1, 5]
    batches_before = server.metric("rnnsearch_batch_requests_count")
    single_before = server.metric("rnnsearch_batch_requests_bucket", le="1.0")
    sentences_before = server.metric("rnnsearch_batch_sentences_sum")

    async def client(i, http):
        body = {"texts": [texts[i]], "beam_size": beams[i % 2]}
        r = await http.post(server.url + "/translate", json=body)
        assert r.status_code == 200, r.text
        return r.json()["translations"][0]

    async def main():
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            return await asyncio.gather(*(client(i, http) for i in range(len(texts))))

    got = asyncio.run(main())
    for beam in beams:
        chosen = [i for i in range(len(texts)) if beams[i % 2] == beam]
        assert [got[i] for i in chosen] == offline.translate([texts[i] for i in chosen],
                                                             beam_size=beam)
    batches = server.metric("rnnsearch_batch_requests_count") - batches_before
    single = server.metric("rnnsearch_batch_requests_bucket", le="1.0") - single_before
    sentences = server.metric("rnnsearch_batch_sentences_sum") - sentences_before
    assert sentences == sum(len(t.split()) for t in texts)   # every word decoded once
    assert batches < len(texts), f"{batches} engine batches for {len(texts)} requests"
    assert single < batches, "no engine batch merged two requests"


def _events(response):
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[len("data: "):])))
    return events


def test_streaming_matches_greedy(server, offline):
    texts = ["attention is all you need", "beam"]
    with httpx.stream("POST", server.url + "/translate/stream", timeout=60,
                      json={"texts": texts, "return_scores": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
    name, done = events[-1]
    assert name == "done"
    assert done == server.post("/translate", {"texts": texts, "beam_size": 1,
                                              "return_scores": True}).json()
    tokens = [e for n, e in events if n == "token"]
    eos = offline.config["special_tokens"]["eos"]
    for index, text in enumerate(texts):
        for word_index, word in enumerate(offline.split_line(text)):
            streamed = [e for e in tokens if e["index"] == index and e["word"] == word_index]
            assert [e["step"] for e in streamed] == list(range(len(streamed)))
            assert streamed[-1]["is_last"] and streamed[-1]["token"] == eos
            assert [e["token"] for e in streamed[:-1]] == \
                offline.translate_batch([word], beam_size=1)[0].hypotheses[0]


def test_streaming_client_that_leaves_does_not_hurt_the_server(server):
    with httpx.stream("POST", server.url + "/translate/stream", timeout=60,
                      json={"texts": [" ".join(WORDS)]}) as response:
        next(response.iter_lines())
    assert server.post("/translate", {"texts": ["fox"]}).status_code == 200


BAD_REQUESTS = [
    (b"{not json", 400, "invalid JSON"),
    (b"\xff\xfe", 400, "invalid JSON"),
    (b'{"texts": ["a"], "length_penalty": NaN}', 400, "NaN"),
    (b"[1, 2]", 400, "must be a JSON object"),
    ({}, 400, 'give either "texts"'),
    ({"texts": ["a"], "tokens": [["a"]]}, 400, "not both"),
    ({"texts": "attention"}, 400, "texts must be a list"),
    ({"texts": ["a", 3]}, 400, "texts[1] must be a string"),
    ({"tokens": ["abc"]}, 400, "tokens[0] must be a list of strings"),
    ({"tokens": [["a", None]]}, 400, "tokens[0] must be a list of strings"),
    ({"texts": ["a"], "beam": 5}, 400, "unknown field 'beam'"),
    ({"texts": ["a"], "beam_size": "5"}, 400, "beam_size must be an integer"),
    ({"texts": ["a"], "beam_size": True}, 400, "beam_size must be an integer"),
    ({"texts": ["a"], "beam_size": 0}, 400, "beam_size must be between 1 and"),
    ({"texts": ["a"], "beam_size": 9}, 400, "--max-beam-size"),
    ({"texts": ["a"], "beam_size": 2, "num_hypotheses": 3}, 400, "num_hypotheses"),
    ({"texts": ["a"], "max_decoding_length": 101}, 400, "--max-decoding-length"),
    ({"texts": ["a"], "min_decoding_length": 50, "max_decoding_length": 10}, 400,
     "min_decoding_length"),
    ({"texts": ["a"], "length_penalty": "x"}, 400, "length_penalty must be a number"),
    (b'{"texts": ["a"], "length_penalty": 1e400}', 400, "length_penalty must be a finite number"),
    ({"texts": ["a"], "suppress_tokens": ["NOT-A-PHONE"]}, 400, "NOT-A-PHONE"),
    ({"texts": ["a"], "suppress_tokens": ["</s>"]}, 400, "cannot be suppressed"),
    ({"texts": ["a"], "return_attention": True}, 400, "return_attention needs tokens"),
    ({"texts": ["x", "a" * 1500]}, 400, "texts[1]: source of 1500 tokens is longer"),
    ({"texts": ["a " * 65]}, 413, "65 words in one request"),
    ({"tokens": [["a"]] * 65}, 413, "--max-sentences"),
    ({"texts": ["a" * 30000]}, 413, "--max-request-bytes"),
    ({"texts": ["need"], "target_prefix": ["N"]}, 400, "target_prefix is not supported with "
                                                       "texts for a per-word model"),
    ({"tokens": [["a"]], "target_prefix": [["NOT-A-PHONE"]]}, 400,
     'target_prefix[0]: not in the target vocabulary: ["NOT-A-PHONE"]'),
    ({"tokens": [["a"]], "target_prefix": [["AH0"] * 101]}, 400,
     "target_prefix[0] has 101 tokens, more than max_decoding_length (100)"),
    ({"tokens": [["a"]], "target_prefix": [["AH0"], ["AH0"]]}, 400, "one entry per input"),
    ({"tokens": [["a"]], "replace_unk": True, "phrase_table": "/etc/passwd"}, 400,
     "phrase_table must be an object"),
    ({"tokens": [["a"]], "phrase_table": {"a": "b"}}, 400, "only used with replace_unk"),
]


@pytest.mark.parametrize("body,status,message", BAD_REQUESTS)
def test_bad_requests_get_json_errors_naming_the_problem(server, body, status, message):
    response = server.post("/translate", body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_target_prefix_and_replace_unk_match_offline(server, offline):
    tokens = [list("attention"), list("need"), list("is")]
    prefixes = [["AE1", "T"], None, ["<unk>"]]
    table = {"i": "I-FROM-TABLE"}
    got = server.post("/translate", {"tokens": tokens, "target_prefix": prefixes,
                                     "beam_size": 4, "return_scores": True,
                                     "replace_unk": True, "phrase_table": table})
    assert got.status_code == 200, got.text
    expected = offline.translate_batch(tokens, target_prefix=prefixes, beam_size=4,
                                       return_scores=True, replace_unk=True,
                                       phrase_table=table, max_decoding_length=100)
    assert got.json()["translations"] == [r.hypotheses[0] for r in expected]
    assert got.json()["scores"] == [r.scores[0] for r in expected]
    assert got.json()["translations"][0][:2] == ["AE1", "T"]
    assert got.json()["translations"][2][0] in ("I-FROM-TABLE", "s")   # the forced UNK
    # streaming: the tokens decoded after the prefix, then /translate's answer
    with httpx.stream("POST", server.url + "/translate/stream", timeout=60,
                      json={"tokens": tokens[:1], "target_prefix": prefixes[:1]}) as response:
        events = _events(response)
    greedy = offline.translate_batch(tokens[:1], target_prefix=prefixes[:1], beam_size=1,
                                     max_decoding_length=100)[0].hypotheses[0]
    assert [e["token"] for n, e in events if n == "token"][:-1] == greedy[2:]
    assert events[-1] == ("done", {"translations": [greedy]})


def test_other_refusals_are_json_too(server):
    assert httpx.get(server.url + "/nowhere").status_code == 404
    assert httpx.get(server.url + "/nowhere").json() == {"error": "Not Found"}
    assert httpx.get(server.url + "/translate").status_code == 405
    streaming = server.post("/translate/stream", {"texts": ["a"], "beam_size": 3})
    assert streaming.status_code == 400 and "beam_size must be 1" in streaming.json()["error"]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        # a declared body far above the limit is refused before it is read
        raw.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                    b"\r\nContent-Length: 999999999\r\n\r\n{}")
        assert raw.recv(4096).startswith(b"HTTP/1.1 413 ")
    # and after all of it the server still answers
    assert server.post("/translate", {"texts": ["dog"]}).json() == {
        "translations": Translator().translate(["dog"])}


def test_health_and_metrics(server):
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok" and health["workers"] == 2
    text = httpx.get(server.url + "/metrics").text
    for name in ("rnnsearch_requests_total", "rnnsearch_request_seconds_bucket",
                 "rnnsearch_batch_sentences_bucket", "rnnsearch_queue_sentences",
                 "rnnsearch_requests_in_flight"):
        assert name in text
    assert server.metric("rnnsearch_requests_total", endpoint="/translate", status="200") >= 1


def test_timeout_and_full_queue_answer_and_the_server_recovers():
    server = Server("--timeout", "0.05", "--max-queue", "100", "--max-sentences", "64",
                    "--max-latency-ms", "0", "--max-beam-size", "16")
    try:
        heavy = {"tokens": [list(w * 3) for w in WORDS] * 3, "beam_size": 16}

        async def main():
            async with httpx.AsyncClient(timeout=60) as http:
                first = asyncio.create_task(http.post(server.url + "/translate", json=heavy))
                await asyncio.sleep(0.01)
                second = asyncio.create_task(http.post(server.url + "/translate", json=heavy))
                await asyncio.sleep(0.01)
                third = await http.post(server.url + "/translate", json=heavy)
                return await first, await second, third

        first, second, third = asyncio.run(main())
        assert first.status_code == 504 and "--timeout" in first.json()["error"]
        assert 503 in (second.status_code, third.status_code)
        busy = second if second.status_code == 503 else third
        assert "server busy" in busy.json()["error"]
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            # a body that never arrives in full is given up after --timeout
            raw.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                        b"\r\n{\"texts\": ")
            assert raw.recv(4096).startswith(b"HTTP/1.1 408 ")
        time.sleep(1.0)   # the timed-out work drains; a small request then fits in time
        quick = server.post("/translate", {"tokens": [["a"]], "beam_size": 1})
        assert quick.status_code in (200, 504)
        assert httpx.get(server.url + "/health").status_code == 200
    finally:
        assert server.stop() == 0


def test_shutdown_finishes_every_request_in_flight(offline):
    server = Server("--workers", "1", "--max-batch-size", "8", "--max-beam-size", "16")
    requests = [{"texts": _texts(8, seed=10 + i), "beam_size": 16} for i in range(12)]

    async def main():
        async with httpx.AsyncClient(timeout=120) as http:
            tasks = [asyncio.create_task(http.post(server.url + "/translate", json=body))
                     for body in requests]
            deadline = time.monotonic() + 30
            while server.metric("rnnsearch_requests_in_flight") < len(requests) + 1:
                assert time.monotonic() < deadline, "requests did not all arrive"
                await asyncio.sleep(0.01)
            server.process.send_signal(signal.SIGTERM)
            return await asyncio.gather(*tasks)

    try:
        answers = asyncio.run(main())
        assert server.process.wait(timeout=120) == 0
    finally:
        server.stop()
    for body, answer in zip(requests, answers):
        assert answer.status_code == 200, answer.text
        assert answer.json()["translations"] == offline.translate(body["texts"], beam_size=16)
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "/health", timeout=2)


def test_serve_refuses_bad_settings():
    done = subprocess.run([sys.executable, "-m", "rnnsearch", "serve", "--workers", "0"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 1 and "--workers must be a positive integer" in done.stderr
