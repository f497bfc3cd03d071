"""Vocabulary maps (docs/vmap.md): CTranslate2's file format and candidate rules, decoding
over each sentence's candidates (against the PyTorch reference restricted to the same
candidates, and bit for bit against full decoding when every token is a candidate), the
builder, and the file as hostile input."""
import os
import subprocess
import sys

import numpy as np
import pytest

import rnnsearch
from rnnsearch.errors import ModelError
from rnnsearch.random_model import vocabularies, write_random_model
from rnnsearch.vmap_build import build_vocab_map
from rnnsearch.vocab_map import VMAP_FILE, parse_vocab_map, write_vocab_map

V_SOURCE, V_TARGET = 40, 200
CONFIG = {
    "format": "rnnsearch-model", "format_version": 1,
    "encoder": {"embedding_size": 8, "cell": "gru", "hidden_size": 16, "bidirectional": True},
    "bridge": {"type": "dense"},
    "attention": {"score": "general"},
    "decoder": {"type": "luong", "embedding_size": 8, "cell": "lstm", "hidden_size": 24,
                "input_feeding": True},
}
SOURCES = [["s1", "s2", "s3"], ["s4", "s5", "s6", "s7", "s8", "s9"], [], ["s10"],
           ["s3", "s3", "s11", "s12", "s13"], ["s20", "s21", "s22", "s23", "s24", "s25", "s26"]]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("vmap-model"))
    write_random_model(path, CONFIG, V_SOURCE, V_TARGET, seed=4)
    return path


def _map_file(path, rules, always=()):
    write_vocab_map(path, rules, always)
    return path


def _partial_rules(seed=0, per_token=12):
    """Each source token maps to a few random target tokens."""
    rng = np.random.default_rng(seed)
    src, tgt = vocabularies(V_SOURCE, V_TARGET)
    return {(s,): sorted(set(rng.choice(tgt[4:], per_token).tolist())) for s in src[4:]}


def _same(a, b):
    assert [r.hypotheses for r in a] == [r.hypotheses for r in b]
    assert [r.scores for r in a] == [r.scores for r in b]          # bit for bit
    assert [r.log_probs for r in a] == [r.log_probs for r in b]
    for x, y in zip(a, b):
        for p, q in zip(x.attention, y.attention):
            assert np.array_equal(p, q)


OPTION_SETS = [
    dict(beam_size=1),
    dict(beam_size=5, num_hypotheses=3, return_attention=True),
    dict(beam_size=4, length_penalty=0.6, coverage_penalty=0.3, min_decoding_length=5),
    dict(beam_size=3, suppress_tokens=["t5", "t9"], max_decoding_length=9),
    dict(beam_size=5, target_prefix=[["t1", "t2"], None, None, ["t3"], None, None]),
    dict(beam_size=2, replace_unk=True),
]


@pytest.mark.parametrize("compute_type", ["float32", "int8"])
def test_a_map_of_every_token_changes_no_bit(model_dir, tmp_path, compute_type):
    """Every token a candidate (listed as always included, or reached from the source
    tokens): the results are those without a map, bit for bit, with every option."""
    _, tgt = vocabularies(V_SOURCE, V_TARGET)
    translator = rnnsearch.Translator(model_dir, compute_type=compute_type)
    always = translator.load_vocab_map(_map_file(str(tmp_path / "a.txt"), {}, tgt))
    src, _ = vocabularies(V_SOURCE, V_TARGET)
    by_source = translator.load_vocab_map(_map_file(
        str(tmp_path / "b.txt"), {(s,): tgt for s in src}))
    for options in OPTION_SETS:
        full = translator.translate_batch(SOURCES, return_scores=True, **options)
        _same(full, translator.translate_batch(SOURCES, return_scores=True, use_vmap=always,
                                               **options))
        _same(full, translator.translate_batch(SOURCES, return_scores=True, use_vmap=by_source,
                                               max_batch_size=2, **options))


_ISA_SCRIPT = """
import sys, numpy as np, rnnsearch
path, compute_type, map_path = sys.argv[1:4]
t = rnnsearch.Translator(path, compute_type=compute_type)
vmap = t.load_vocab_map(map_path)
sources = [["s1", "s2", "s3"], ["s4", "s5", "s6", "s7", "s8", "s9"]]
a = t.translate_batch(sources, beam_size=5, num_hypotheses=2, return_scores=True)
b = t.translate_batch(sources, beam_size=5, num_hypotheses=2, return_scores=True, use_vmap=vmap)
assert [r.hypotheses for r in a] == [r.hypotheses for r in b]
assert [r.scores for r in a] == [r.scores for r in b], (a, b)
print("same")
"""


@pytest.mark.parametrize("isa", ["portable", "avx2"])
def test_every_kernel_gathers_its_own_layout(model_dir, tmp_path, isa):
    """The gathered output layer in each kernel's layout (float32 rows or panels, int8 rows
    or 2-input panels) gives the full layer's bits."""
    _, tgt = vocabularies(V_SOURCE, V_TARGET)
    map_path = _map_file(str(tmp_path / "all.txt"), {}, tgt)
    env = dict(os.environ, RNNSEARCH_ISA=isa)
    for compute_type in ("float32", "int8"):
        out = subprocess.run([sys.executable, "-c", _ISA_SCRIPT, model_dir, compute_type,
                              map_path], env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and "same" in out.stdout, out.stderr


def _restricted(model, candidates):
    """The reference model with each step's log-softmax over `candidates` only (the other
    tokens -inf): decoding with a vocabulary map, computed independently."""
    import torch

    class Restricted:
        def __getattr__(self, name):
            return getattr(model, name)

        def decode_step(self, *args):
            logits, state, weights = model.decode_logits(*args)
            out = torch.full_like(logits, -float("inf"))
            cand = torch.as_tensor(candidates)
            out[:, cand] = torch.log_softmax(logits[:, cand], dim=-1)
            return out, state, weights
    return Restricted()


def test_decoding_over_candidates_matches_the_reference(tmp_path):
    torch = pytest.importorskip("torch")
    from rnnsearch.reference import export_model_dir, random_model
    from rnnsearch.reference import translate as reference_translate
    config = dict(CONFIG, decoder=dict(CONFIG["decoder"], hidden_size=32))
    model = random_model(config, V_SOURCE, V_TARGET, seed=7)
    path = str(tmp_path / "model")
    export_model_dir(model, path, *vocabularies(V_SOURCE, V_TARGET))
    _map_file(os.path.join(path, VMAP_FILE), _partial_rules(), ["t0", "t1"])
    translator = rnnsearch.Translator(path)
    sources = [s for s in SOURCES if s]
    ids = translator.target_vocab.ids
    for beam, extra in ((1, {}), (5, {}), (5, dict(min_decoding_length=4, suppress=["t1"],
                                                   prefix=["t7", "t150"]))):
        prefix = [ids[t] for t in extra.get("prefix", [])]
        got = translator.translate_batch(
            sources, beam_size=beam, num_hypotheses=beam, max_decoding_length=20,
            use_vmap=True, return_scores=True, return_attention=True,
            min_decoding_length=extra.get("min_decoding_length"),
            suppress_tokens=extra.get("suppress"),
            target_prefix=[extra["prefix"]] * len(sources) if prefix else None)
        for tokens, result in zip(sources, got):
            cand = translator.vocab_map.candidates(tokens, prefix)
            expected = reference_translate(
                _restricted(model, cand), translator.source_ids(tokens), 2, 3,
                beam_size=beam, num_hypotheses=beam, max_decoding_length=20,
                min_decoding_length=extra.get("min_decoding_length", 0),
                suppress=tuple(ids[t] for t in extra.get("suppress", [])), prefix=prefix)
            hyps = [[ids[t] for t in h] for h in result.hypotheses]
            assert hyps == [h.tokens for h in expected]
            assert all(set(h) <= set(cand.tolist()) for h in hyps)
            for score, attention, ref in zip(result.scores, result.attention, expected):
                assert score == pytest.approx(ref.score, rel=1e-4, abs=1e-4)
                np.testing.assert_allclose(attention, ref.attention, atol=1e-5)
    del torch


@pytest.mark.parametrize("compute_type", ["float32", "int8"])
def test_a_batch_decodes_as_its_sentences_one_by_one(model_dir, tmp_path, compute_type):
    """Each sentence has its own candidates: batching (and threads) change no bit."""
    translator = rnnsearch.Translator(model_dir, compute_type=compute_type, intra_threads=2)
    vmap = translator.load_vocab_map(_map_file(str(tmp_path / "m.txt"), _partial_rules(1)))
    options = dict(beam_size=4, num_hypotheses=2, return_scores=True, return_attention=True,
                   use_vmap=vmap)
    batch = translator.translate_batch(SOURCES, **options)
    alone = [translator.translate_batch([s], **options)[0] for s in SOURCES]
    _same(batch, alone)
    for tokens, result in zip(SOURCES, batch):
        allowed = {translator.target_vocab.tokens[i] for i in vmap.candidates(tokens)}
        assert len(allowed) < V_TARGET // 2   # the map does restrict the search
        assert all(set(h) <= allowed for h in result.hypotheses)


def test_streaming_with_a_map(model_dir, tmp_path):
    """generate_tokens and translate_iterable take use_vmap as translate_batch does."""
    translator = rnnsearch.Translator(model_dir)
    vmap = translator.load_vocab_map(_map_file(str(tmp_path / "m.txt"), _partial_rules(3)))
    greedy = translator.translate_batch(SOURCES[:2], beam_size=1, use_vmap=vmap)
    streamed = [step.token for step in translator.generate_tokens(SOURCES[1], use_vmap=vmap)]
    assert [t for t in streamed if t != "</s>"] == greedy[1].hypotheses[0]
    iterated = list(translator.translate_iterable(SOURCES[:2], beam_size=1, use_vmap=vmap))
    assert [r.hypotheses for r in iterated] == [r.hypotheses for r in greedy]


def test_ctranslate2_rules(model_dir):
    """n-grams match as n-grams, a later rule replaces an earlier one, unknown target
    tokens are UNK, the empty n-gram's tokens and UNK/BOS/EOS are always candidates, and
    so is the target prefix."""
    translator = rnnsearch.Translator(model_dir)
    ids = translator.target_vocab.ids
    data = ("s1\tt10 t11\n"
            "s1 s2\tt20\n"
            "s3\tt30\n"
            "s3\tt31 nosuchtoken\n"
            "\tt40\n").encode()
    vmap = parse_vocab_map(data, ids, [ids["<unk>"], ids["<s>"], ids["</s>"]], "test")
    fixed = {ids["<unk>"], ids["<s>"], ids["</s>"], ids["t40"]}
    assert set(vmap.candidates(["s1"]).tolist()) == fixed | {ids["t10"], ids["t11"]}
    assert set(vmap.candidates(["s2", "s1"]).tolist()) == fixed | {ids["t10"], ids["t11"]}
    assert set(vmap.candidates(["s1", "s2"]).tolist()) == \
        fixed | {ids["t10"], ids["t11"], ids["t20"]}
    assert set(vmap.candidates(["s3"]).tolist()) == fixed | {ids["t31"]}
    assert set(vmap.candidates(["s9"], [ids["t99"]]).tolist()) == fixed | {ids["t99"]}
    got = vmap.candidates(["s1", "s2", "s3"])
    assert got.dtype == np.intc and np.all(np.diff(got) > 0)


@pytest.mark.parametrize("content, message", [
    (b"s1 t1\n", "line 1: expected"),
    (b"s1\tt1\n\xff\tt2\n", "line 2 is not UTF-8"),
    (b"s1\tt1\ns2\tt2\tt3\n", "line 2: one TAB"),
    (b"s1  s2\tt1\n", "line 1: the source n-gram"),
    (("a " * 9).strip().encode() + b"\tt1\n", "line 1: a source n-gram of 9 tokens"),
])
def test_a_bad_map_is_a_model_error_naming_the_line(model_dir, tmp_path, content, message):
    path = os.path.join(str(tmp_path), "model")
    import shutil
    shutil.copytree(model_dir, path)
    with open(os.path.join(path, VMAP_FILE), "wb") as f:
        f.write(content)
    with pytest.raises(ModelError, match=message):
        rnnsearch.Translator(path)


def test_map_files_are_read_as_untrusted(model_dir, tmp_path, monkeypatch):
    import shutil
    path = os.path.join(str(tmp_path), "model")
    shutil.copytree(model_dir, path)
    outside = tmp_path / "outside.txt"
    outside.write_text("s1\tt1\n")
    os.symlink(str(outside), os.path.join(path, VMAP_FILE))
    with pytest.raises(ModelError, match="outside"):
        rnnsearch.Translator(path)
    os.remove(os.path.join(path, VMAP_FILE))
    os.mkfifo(os.path.join(path, VMAP_FILE))
    with pytest.raises(ModelError, match="not a regular file"):
        rnnsearch.Translator(path)
    os.remove(os.path.join(path, VMAP_FILE))
    os.mkdir(os.path.join(path, VMAP_FILE))
    with pytest.raises(ModelError, match="not a regular file"):
        rnnsearch.Translator(path)
    os.rmdir(os.path.join(path, VMAP_FILE))
    with open(os.path.join(path, VMAP_FILE), "w") as f:
        f.write("s1\tt1\n" * 100)
    import rnnsearch.vocab_map as vocab_map
    monkeypatch.setattr(vocab_map, "MAX_VMAP_BYTES", 64)
    with pytest.raises(ModelError, match="at most 64"):
        rnnsearch.Translator(path)
    monkeypatch.setattr(vocab_map, "MAX_VMAP_BYTES", 1 << 20)
    monkeypatch.setattr(vocab_map, "MAX_VMAP_RULES", 10)
    with pytest.raises(ModelError, match="100 lines; at most 10"):
        rnnsearch.Translator(path)


def test_use_vmap_arguments(model_dir):
    translator = rnnsearch.Translator(model_dir)
    assert translator.vocab_map is None
    with pytest.raises(ValueError, match="no vmap.txt"):
        translator.translate_batch([["s1"]], use_vmap=True)
    with pytest.raises(TypeError, match="use_vmap must be"):
        translator.translate_batch([["s1"]], use_vmap="vmap.txt")
    with pytest.raises(ValueError, match="search='opennmt'"):
        translator.translate_batch([["s1"]], use_vmap=True, search="opennmt")
    engine = translator._engine
    for bad in ([[]], [[5, 3]], [[1, 1]], [[V_TARGET]], [[-1]]):
        with pytest.raises(ValueError, match="candidate target ids"):
            engine.translate([[5, 6]], candidates=bad)
    with pytest.raises(ValueError, match="candidate lists"):
        engine.translate([[5, 6]], candidates=[[1], [2]])


def test_builder_finds_translations_and_frequent_tokens():
    """Source word wI always comes with target word xI (among frequent filler words): the
    rule of wI ranks xI first; the fillers are the always-included tokens."""
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(400):
        words = rng.choice(30, 5, replace=False)
        fillers = rng.choice(["a", "b", "c"], 4).tolist()
        pairs.append(([f"w{i}" for i in words], [f"x{i}" for i in words] + fillers))
    rules, always = build_vocab_map(pairs, top_k=3, frequent=3)
    assert sorted(always) == ["a", "b", "c"]
    for i in range(30):
        assert rules[(f"w{i}",)][0] == f"x{i}"
        assert not set(rules[(f"w{i}",)]) & {"a", "b", "c"}
    # bounded memory: with room for few pairs, rare pairs go and frequent ones stay
    rules_small, _ = build_vocab_map(pairs, top_k=1, frequent=3, max_pairs=200)
    assert rules_small[("w0",)] == ["x0"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "rnnsearch", *args], capture_output=True,
                          text=True, timeout=300)


def test_build_vmap_and_translate_with_it(model_dir, tmp_path):
    """rnnsearch build-vmap writes a map the model reads; translate --use-vmap and --vmap
    decode with it; a map of every token gives the lines of decoding without one."""
    import shutil
    path = str(tmp_path / "model")
    shutil.copytree(model_dir, path)
    src, tgt = vocabularies(V_SOURCE, V_TARGET)
    rng = np.random.default_rng(2)
    (tmp_path / "train.src").write_text("".join(
        " ".join(rng.choice(src[4:], 6)) + "\n" for _ in range(200)))
    (tmp_path / "train.tgt").write_text("".join(
        " ".join(rng.choice(tgt[4:], 6)) + "\n" for _ in range(200)))
    out = _cli("build-vmap", "--source", str(tmp_path / "train.src"), "--target",
               str(tmp_path / "train.tgt"), "-o", os.path.join(path, VMAP_FILE), "-m", path,
               "--top-k", "5", "--frequent", "10")
    assert out.returncode == 0, out.stderr
    vmap = rnnsearch.Translator(path).vocab_map
    assert len(vmap.rules) > 20 and len(vmap.always) == 10 + 3
    (tmp_path / "input.txt").write_text("s1 s2 s3\ns4 s5\n")
    used = _cli("translate", "-m", path, "-i", str(tmp_path / "input.txt"), "--use-vmap")
    assert used.returncode == 0, used.stderr
    _map_file(str(tmp_path / "all.txt"), {}, tgt)
    plain = _cli("translate", "-m", path, "-i", str(tmp_path / "input.txt"))
    every = _cli("translate", "-m", path, "-i", str(tmp_path / "input.txt"), "--vmap",
                 str(tmp_path / "all.txt"))
    assert plain.returncode == every.returncode == 0, every.stderr
    assert plain.stdout == every.stdout and plain.stdout.count("\n") == 2
    refused = _cli("translate", "-m", path, "-i", str(tmp_path / "input.txt"), "--use-vmap",
                   "--search", "opennmt")
    assert refused.returncode == 1 and "--use-vmap" in refused.stderr


@pytest.mark.parametrize("source, target, message", [
    ("a b\nc d\n", "x\n", "the source corpus has more lines than the other .line 2"),
    ("a b\n", "x\n\xff\n", "line 2 is not UTF-8"),
    ("a " * 2000 + "\n", "x\n", "source corpus line 1: 2000 tokens; at most 1024"),
])
def test_build_vmap_refuses_bad_corpora(tmp_path, source, target, message):
    (tmp_path / "s").write_bytes(source.encode("utf-8"))
    (tmp_path / "t").write_bytes(target.encode("utf-8", "surrogateescape")
                                 if "\xff" not in target else b"x\n\xff\n")
    out = _cli("build-vmap", "--source", str(tmp_path / "s"), "--target", str(tmp_path / "t"),
               "-o", str(tmp_path / "out.txt"))
    assert out.returncode == 1
    import re
    assert re.search(message, out.stderr), out.stderr
    assert not (tmp_path / "out.txt").exists()
    os.mkfifo(str(tmp_path / "fifo"))
    out = _cli("build-vmap", "--source", str(tmp_path / "fifo"), "--target",
               str(tmp_path / "t"), "-o", str(tmp_path / "out.txt"))
    assert out.returncode == 1 and "not a regular file" in out.stderr
