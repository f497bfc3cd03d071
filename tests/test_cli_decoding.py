"""translate's decoding flags map to the same Translator options on the local path and
on the Ray path (cli_decoding.decoding_keywords): Marian's search flags used to be
dropped by `translate --ray`."""
import rnnsearch
from rnnsearch.cli import build_parser
from rnnsearch.cli_decoding import decoding_keywords


def test_every_decoding_flag_reaches_the_translator_options(small_model_dir):
    args = build_parser().parse_args([
        "translate", "-m", small_model_dir, "--beam-size", "3", "--max-length", "7",
        "--min-length", "2", "--length-penalty", "0.6", "--coverage-penalty", "0.2",
        "--shrinking-beam", "--length-normalization", "0.5", "--word-penalty", "0.25",
        "--max-length-factor", "2.5"])
    keywords = decoding_keywords(args)
    assert keywords == dict(
        beam_size=3, max_decoding_length=7, min_decoding_length=2, length_penalty=0.6,
        coverage_penalty=0.2, normalize_scores=None, suppress_tokens=None, replace_unk=None,
        shrinking_beam=True, length_normalization=0.5, word_penalty=0.25,
        max_length_factor=2.5)
    options = rnnsearch.Translator(small_model_dir).decoding_options(**keywords)
    for key in ("shrinking_beam", "length_normalization", "word_penalty", "max_length_factor"):
        assert options[key] == keywords[key]


def test_the_ray_path_passes_the_same_keywords(small_model_dir, monkeypatch):
    import pytest
    ray = pytest.importorskip("ray")
    from rnnsearch import distributed
    calls = []
    monkeypatch.setattr(distributed, "connect", lambda address: None)
    monkeypatch.setattr(distributed, "translate_files",
                        lambda *a, **kw: calls.append(kw))
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 8})   # no cluster started
    args = build_parser().parse_args([
        "translate", "-m", small_model_dir, "--ray", "auto", "-i", "in.txt", "-o", "out",
        "--word-penalty", "0.25", "--shrinking-beam", "--max-length-factor", "2.5"])
    assert distributed.translate_command(args) == 0
    for key, value in decoding_keywords(args).items():
        assert calls[0][key] == value
