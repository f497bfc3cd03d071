"""search="opennmt": converted OpenNMT-py models decoded exactly as onmt_translate decodes them.

The fixtures (tools/make_opennmt_fixtures.py) hold, per model, onmt_translate's own outputs
for its decoding options one by one and in the summarization recipe, run by the OpenNMT-py
release that trained the model (0.9.2's checkpoint also by 1.2.0; references for options a
release crashes on are recorded as its error). Every n-best list must come out identical,
scores within 1e-4. Sampling draws differ from torch's, so sampled runs are compared with the
same uniform draws injected into both, and statistically."""
import argparse
import collections
import json
import math
import os
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rnnsearch  # noqa: E402
from rnnsearch.convert.opennmt import converter as opennmt_py  # noqa: E402
from rnnsearch.opennmt_search.batches import onmt_batches  # noqa: E402

from framework_fixtures import fixture_dir, fixture_names, load_expected  # noqa: E402

FIXTURES = fixture_dir("opennmt")
NAMES = [n for n in fixture_names("opennmt") if "runs" in load_expected("opennmt", n)]
VERSION = {"OpenNMT-py 3.5.1": 3, "OpenNMT-py 2.3.0": 2, "OpenNMT-py 1.2.0": 1}
TOL = 1e-4


@pytest.fixture(scope="module")
def translators(tmp_path_factory):
    made = {}

    def get(name):
        if name not in made:
            out = str(tmp_path_factory.mktemp(name))
            opennmt_py.convert(argparse.Namespace(
                checkpoint=os.path.join(FIXTURES, name, "model.pt"), output=out))
            made[name] = rnnsearch.Translator(out)
        return made[name]
    return get


def _runs(kind):
    cases = []
    for name in NAMES:
        for run in load_expected("opennmt", name)["runs"]:
            if "results" not in run or run["decoded_by"] not in VERSION:
                continue
            sampled = run["name"].startswith("sample")
            injected = run["name"].endswith("_injected")
            if (kind == "exact" and not sampled) or (kind == "injected" and injected) or \
                    (kind == "sampled" and sampled and not injected):
                cases.append(pytest.param(name, run, id=f"{name}-{run['name']}-"
                                                        f"v{VERSION[run['decoded_by']]}"))
    return cases


def _decode(translator, sources, run, fixture=None, **extra):
    flags = dict(run["flags"], **extra)
    if "phrase_table" in flags:  # a file beside the fixture's model
        flags["phrase_table"] = os.path.join(FIXTURES, fixture, flags["phrase_table"])
    return translator.translate_batch(sources, search="opennmt", return_scores=True,
                                      opennmt_version=VERSION[run["decoded_by"]], **flags)


def _same(result, expected):
    got = [(" ".join(h), s) for h, s in zip(result.hypotheses, result.scores)]
    return len(got) == len(expected) and all(
        g[0] == e[0] and math.isclose(g[1], e[1], rel_tol=TOL, abs_tol=TOL)
        for g, e in zip(got, expected)), got


@pytest.mark.parametrize("name,run", _runs("exact"))
def test_equals_onmt_translate(translators, name, run):
    """Every sentence's n-best list, in order, and its scores."""
    expected = load_expected("opennmt", name)
    results = _decode(translators(name), expected["sources"], run, name)
    for i, (result, reference) in enumerate(zip(results, run["results"])):
        same, got = _same(result, reference)
        assert same, (i, expected["sources"][i], got, reference)


def _replay_order(sources, run):
    """The lines in the order OpenNMT-py translated them (batch size 1)."""
    lines = sources * run["repeats"]
    order = [b[0] for b in onmt_batches([len(s) for s in lines], VERSION[run["decoded_by"]],
                                        1, "sents")]
    return lines, order


@pytest.mark.parametrize("name,run", _runs("injected"))
def test_sampling_with_the_same_draws_equals_onmt(translators, name, run):
    """OpenNMT-py's sampling with its random draws replaced by recorded uniform draws, and
    ours with the same draws: the same samples and scores."""
    lines, order = _replay_order(load_expected("opennmt", name)["sources"], run)
    draws, used = [None] * len(lines), 0
    results = [run["results"][i] for i in range(len(lines))]
    for line in order:  # each line used one draw per step it took
        tokens = results[line][0][0].split()
        steps = min(len(tokens) + 1, run["flags"].get("max_length", 250))
        draws[line] = run["draws"][used:used + steps]
        used += steps
    assert used == len(run["draws"])
    ours = _decode(translators(name), lines, run, random_draws=draws)
    for i, (result, reference) in enumerate(zip(ours, results)):
        same, got = _same(result, reference)
        assert same, (i, lines[i], got, reference)


def _chi_square_p(statistic, dof):
    """Upper tail of chi-square (Wilson-Hilferty), enough for a sanity threshold."""
    if dof <= 0:
        return 1.0
    z = ((statistic / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
    return 0.5 * math.erfc(z / math.sqrt(2))


@pytest.mark.parametrize("name,run", _runs("sampled"))
def test_sampling_distribution_matches_onmt(translators, name, run):
    """OpenNMT-py's own samples (torch's draws) against ours: every sequence both drew has
    the same score, and OpenNMT-py's counts fit our frequencies (chi-square)."""
    sources = load_expected("opennmt", name)["sources"]
    tr = translators(name)
    paths = run["flags"]["beam_size"] if VERSION[run["decoded_by"]] >= 2 else 1
    rounds = 300 // paths
    ours = _decode(tr, sources * rounds, run, seed=1234)
    theirs = run["results"]
    statistic, dof = 0.0, 0
    for i in range(len(sources)):
        mine = collections.Counter()
        scores = {}
        for result in ours[i::len(sources)]:
            for tokens, score in zip(result.hypotheses, result.scores):
                mine[" ".join(tokens)] += 1
                scores[" ".join(tokens)] = score
        drawn = collections.Counter()
        for result in theirs[i::len(sources)]:
            for text, score in result:
                drawn[text] += 1
                if text in scores:
                    assert math.isclose(scores[text], score, rel_tol=TOL, abs_tol=TOL)
        total_mine, total_theirs = sum(mine.values()), sum(drawn.values())
        common = [t for t, c in mine.items() if c / total_mine >= 0.05]
        categories = [(drawn[t], mine[t] / total_mine) for t in common]
        rest = 1 - sum(p for _, p in categories)
        if rest > 1e-9:
            categories.append((total_theirs - sum(o for o, _ in categories), rest))
        for observed, p in categories:
            expected = total_theirs * p
            statistic += (observed - expected) ** 2 / expected
        dof += len(categories) - 1
    assert _chi_square_p(statistic, dof) > 1e-4, (statistic, dof)


@pytest.mark.parametrize("name", ["v2_rnn_lstm_general_bridge", "v1_rnn_lstm_general_2layers",
                                  "brnn_lstm_general_feed_2layers"])
def test_defaults_are_the_checkpoints_releases(translators, name):
    """With no flag at all, onmt_translate's defaults of the release that trained the model
    (3.x: avg length penalty, max_length_ratio 1.25; 2.x/1.x: none, max_length 100)."""
    expected = load_expected("opennmt", name)
    run = next(r for r in expected["runs"] if r["name"] == "defaults_nbest")
    results = translators(name).translate_batch(expected["sources"], search="opennmt",
                                                n_best=5, return_scores=True)
    for result, reference in zip(results, run["results"]):
        assert _same(result, reference)[0]


# ----- what OpenNMT-py refuses


def test_releases_own_refusals(translators):
    """1.x's greedy search asserts -block_ngram_repeat 0; 1.x cannot sample with a beam."""
    tr = translators("v1_rnn_lstm_general_2layers")
    with pytest.raises(ValueError, match="block_ngram_repeat"):
        tr.translate_batch([["a"]], search="opennmt", opennmt_version=1, beam_size=1,
                           block_ngram_repeat=2)
    with pytest.raises(ValueError, match="beam search OR random sampling"):
        tr.translate_batch([["a"]], search="opennmt", opennmt_version=1, beam_size=5,
                           random_sampling_topk=5)


@pytest.mark.parametrize("flags,error,message", [
    ({"coverage_penalty": "summary", "beta": 5}, ValueError, "attentional decoder"),
    ({"replace_unk": True}, ValueError, "attentional decoder"),
    ({"copy_attn": True}, ValueError, "no copy generator"),
    ({"length_penalty": "gnmt"}, ValueError, "length_penalty"),
    ({"beam_size": 0}, ValueError, "beam_size"),
    ({"n_best": 6}, ValueError, "n_best"),
    ({"random_sampling_topp": 1.5}, ValueError, "random_sampling_topp"),
    ({"alpha": float("nan")}, ValueError, "alpha"),
    ({"ignore_when_blocking": "."}, TypeError, "ignore_when_blocking"),
    ({"beam_sizes": 3}, TypeError, "beam_sizes"),
    ({"max_length_ratio": 1.5, "opennmt_version": 2}, ValueError, "max_length_ratio"),
    ({"opennmt_version": 4}, ValueError, "opennmt_version"),
])
def test_options_that_contradict_the_model_or_onmt(translators, flags, error, message):
    tr = translators("rnn_lstm_noattention")
    with pytest.raises(error, match=message):
        tr.translate_batch([["a", "b"]], search="opennmt", **flags)


def test_copy_model_needs_search_opennmt(translators):
    tr = translators("v2_brnn_lstm_general_copy_mlp")
    with pytest.raises(ValueError, match="search='opennmt'"):
        tr.translate_batch([["a", "12"]])
    with pytest.raises(ValueError, match="copies source words"):
        tr.translate_batch([["a", "12"]], search="opennmt", copy_attn=False)
    with pytest.raises(TypeError, match="n_best"):
        tr.translate_batch([["a", "12"]], search="opennmt", num_hypotheses=2, beam_size=2)
    with pytest.raises(ValueError, match="score_batch does not decode"):
        tr.score_batch([["a", "12"]], [["12", "A"]])
    with pytest.raises(ValueError, match="target_prefix is not supported"):
        tr.translate_batch([["a", "12"]], search="opennmt", target_prefix=[["12"]])


# ----- batches


def test_per_sentence_equals_batches_of_one(translators):
    """per_sentence=True gives every sentence what onmt_translate -batch_size 1 gives it,
    whatever the batch around it (copy attention over padding, -max_length_ratio and the
    batch-wide rules otherwise change outputs)."""
    for name, flags in (("v2_brnn_lstm_general_copy_mlp", {"opennmt_version": 2}),
                        ("brnn_lstm_general_feed_2layers", {"max_length_ratio": 0.5})):
        tr = translators(name)
        sources = load_expected("opennmt", name)["sources"]
        alone = [tr.translate_batch([s], search="opennmt", return_scores=True, n_best=3,
                                    **flags)[0] for s in sources]
        together = tr.translate_batch(sources, search="opennmt", return_scores=True,
                                      n_best=3, per_sentence=True, **flags)
        for a, b in zip(alone, together):
            assert a.hypotheses == b.hypotheses and a.scores == b.scores


def test_threads_give_the_serial_results(translators):
    tr = translators("v2_rnn_gru_mlp_copy_reuse_coverage_bridge")
    sources = load_expected("opennmt", "v2_rnn_gru_mlp_copy_reuse_coverage_bridge")["sources"]
    flags = dict(opennmt_version=2, beam_size=4, n_best=2, coverage_penalty="summary",
                 beta=2.0, block_ngram_repeat=2, return_scores=True, return_attention=True)
    serial = tr.translate_batch(sources, search="opennmt", **flags)
    out = [None] * 4

    def work(i):
        out[i] = tr.translate_batch(sources, search="opennmt", **flags)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for result in out:
        for a, b in zip(serial, result):
            assert a.hypotheses == b.hypotheses and a.scores == b.scores
            assert all(np.array_equal(x, y) for x, y in zip(a.attention, b.attention))


def test_intra_threads_decode_batches_at_once(translators, tmp_path):
    """intra_threads=2 decodes OpenNMT-py batches two at a time, with the same results."""
    name = "v2_rnn_lstm_dot_copy_general_wide"
    sources = load_expected("opennmt", name)["sources"]
    one = translators(name)
    two = rnnsearch.Translator(one.model_path, intra_threads=2)
    flags = dict(search="opennmt", batch_size=3, n_best=3, return_scores=True)
    for a, b in zip(one.translate_batch(sources, **flags), two.translate_batch(sources, **flags)):
        assert a.hypotheses == b.hypotheses and a.scores == b.scores


def test_stats_count_the_decoded_rows(translators):
    """stats["decoded_rows"] (the work bench_opennmt's floors count): greedy decoding steps
    each unfinished sentence once per token it emits, EOS included, alone or in a batch;
    beam search at most beam rows a step."""
    from rnnsearch.opennmt_search import translate
    name = "brnn_lstm_general_feed_2layers"
    tr, sources = translators(name), load_expected("opennmt", name)["sources"]
    for batch_size in (1, 4, 30):
        stats = {}
        results = translate(tr, sources, stats=stats, beam_size=1, batch_size=batch_size)
        lengths = [len(hypotheses[0]) for hypotheses, _, _ in results]
        assert max(lengths) < 20   # every sentence ended with EOS, before any length cap
        assert stats["decoded_rows"] == sum(n + 1 for n in lengths)
    # beam 5: a sentence runs at least until its best hypothesis's EOS, at most 5 rows a
    # step, and OpenNMT-py's steps stop at 100 here (max_length)
    stats = {}
    results = translate(tr, sources, stats=stats, beam_size=5, max_length=100)
    best = [len(hypotheses[0]) for hypotheses, _, _ in results]
    assert sum(n + 1 for n in best) <= stats["decoded_rows"] <= 5 * 100 * len(sources)


def test_attention_rows_cover_the_tokens(translators):
    tr = translators("v2_brnn_lstm_general_copy_mlp")
    result = tr.translate_batch([["a", "12", "b"]], search="opennmt", opennmt_version=2,
                                return_attention=True)[0]
    attention = result.attention[0]
    assert attention.shape == (len(result.hypotheses[0]), 3)
    assert np.all(attention >= 0) and np.all(attention.sum(axis=1) <= 1 + 1e-5)


def test_fixture_inventory():
    """Fixtures of every release, copy and coverage models, the summarization recipe."""
    runs = {(n, r["name"], r["decoded_by"]) for n in NAMES
            for r in load_expected("opennmt", n)["runs"] if "results" in r}
    trained = {load_expected("opennmt", n)["trained_by"] for n in NAMES}
    assert {"OpenNMT-py 3.5.1", "OpenNMT-py 2.3.0", "OpenNMT-py 1.2.0",
            "OpenNMT-py 0.9.2"} <= trained
    for name in ("v2_brnn_lstm_general_copy_mlp", "v1_brnn_lstm_mlp_copy_reuse_coverage_bridge",
                 "v0_brnn_lstm_dot_copy_general"):
        assert any(n == name and r == "summarization" for n, r, _ in runs), name
    assert any(r == "sample_topk_injected" for _, r, _ in runs)
    with open(os.path.join(FIXTURES, "brnn_lstm_general_coverage", "expected.json")) as f:
        crashes = [r for r in json.load(f)["runs"] if "error" in r]
    assert any(r["name"].startswith("coverage") for r in crashes)  # 3.5.1's own crash


def test_cli_writes_what_onmt_translate_writes(translators, tmp_path):
    """rnnsearch translate --search opennmt with onmt_translate's own flags (the
    summarization recipe on a 1.2.0 copy model): the same lines, n_best per sentence."""
    import subprocess
    import sys
    name = "v1_brnn_lstm_mlp_copy_reuse_coverage_bridge"
    expected = load_expected("opennmt", name)
    run = next(r for r in expected["runs"] if r["name"] == "summarization" and "results" in r)
    source = tmp_path / "src.txt"
    source.write_text("".join(" ".join(s) + "\n" for s in expected["sources"]))
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
    from opennmt_decoding import flag_argv
    argv = flag_argv(run["flags"])
    output = tmp_path / "out.txt"
    subprocess.run([sys.executable, "-m", "rnnsearch", "translate", "--search", "opennmt",
                    "-model", translators(name).model_path, "-src", str(source),
                    "-output", str(output), "-q"] + argv, check=True)
    lines = output.read_text(encoding="utf-8").splitlines()
    n_best = run["flags"].get("n_best", 1)
    assert lines == [hyps[i][0] if i < len(hyps) else "" for hyps in run["results"]
                     for i in range(n_best)]


def test_engine_call_checks_its_inputs(translators):
    """Engine.translate_opennmt copies lists of ints by typed loops and anything else
    through NumPy: the same results either way, and the same refusals."""
    tr = translators("rnn_lstm_general_feed_bridge_2layers")
    engine = tr._engine
    sources = [tr.source_ids(s) for s in load_expected("opennmt",
                                                       "rnn_lstm_general_feed_bridge_2layers")
               ["sources"][:4]]
    options = {"version": 3, "beam_size": 3, "n_best": 2, "min_length": 0,
               "max_lengths": [12] * 4, "length_penalty": 1, "alpha": 1.0,
               "coverage_penalty": 0, "beta": 0.0, "stepwise_penalty": False,
               "block_ngram_repeat": 2, "ratio": 0.0, "ban_unk": False,
               "unk_id": tr.target_vocab.ids["<unk>"], "sampling": False, "top_k": 0,
               "top_p": 0.0, "temperature": 1.0, "per_sentence": False,
               "return_attention": True}

    def plain(out):
        return [(w, [(ids, np.float32(s).tobytes(), a.tobytes(), cut)
                     for ids, s, a, cut in hyps]) for w, hyps in out]
    expected = plain(engine.translate_opennmt(sources, options, ignore=[5, 4, 5]))
    as_numpy = [np.array(s, dtype=np.int64) for s in sources]
    other = dict(options, max_lengths=np.array([12] * 4))
    assert plain(engine.translate_opennmt(as_numpy, other, ignore=(4, 5))) == expected
    assert plain(engine.translate_opennmt([tuple(s) for s in sources], options,
                                          ignore=np.array([4, 5]))) == expected
    with pytest.raises(ValueError, match="empty source"):
        engine.translate_opennmt(sources[:1] + [[]], dict(options, max_lengths=[12, 12]))
    for bad in (-1, len(tr.source_vocab.tokens), 2 ** 40):
        with pytest.raises(ValueError, match="source ids must be in"):
            engine.translate_opennmt([sources[0][:2] + [bad]], dict(options, max_lengths=[5]))
    with pytest.raises(ValueError, match="one max_length per sentence"):
        engine.translate_opennmt(sources, dict(options, max_lengths=[12] * 3))
