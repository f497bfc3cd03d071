"""The Marian converter against Marian itself: tiny models trained by pymarian and its own
n-best decoding (tests/fixtures/marian/, made by tools/make_marian_fixtures.py). For every
fixture sentence and search setting (greedy; beam 5 with --normalize 0.6; beam 5 with
--normalize 1, --word-penalty 0.5, --max-length-factor 1.2): the same hypotheses in the same
order, scores and log-probabilities within 1e-4 (Marian prints 6 significant digits), soft
alignments within 1e-5, hard and thresholded alignments identical. Then refusals."""
import io
import os
import shlex
import shutil
import zipfile
from contextlib import redirect_stdout

import numpy as np
import pytest

pytest.importorskip("yaml")

import rnnsearch  # noqa: E402
from framework_fixtures import fixture_dir, fixture_names, load_expected  # noqa: E402
from rnnsearch.cli import main as cli_main  # noqa: E402
from rnnsearch.convert.marian import build, convert_marian  # noqa: E402
from rnnsearch.marian_output import alignment, parse_alignment  # noqa: E402

FIXTURES = fixture_dir("marian")
NAMES = fixture_names("marian")


def _options(text: str) -> dict:
    words = shlex.split(text)
    return {words[i][2:]: words[i + 1] for i in range(0, len(words), 2)}


def _parse(line: str) -> dict:
    """One Marian n-best line: index ||| text [||| alignment] ||| F0= logprob ||| score."""
    fields = line.split(" ||| ")
    index, text, f0, score = fields[0], fields[1], fields[-2], fields[-1]
    align = fields[2] if len(fields) == 5 else None
    return {"index": int(index), "text": text, "tokens": text.split(), "alignment": align,
            "log_prob": float(f0.split("=")[1]), "score": float(score)}


def _search_options(options: dict) -> dict:
    """Marian's decoder options as translate_batch options."""
    return dict(beam_size=int(options["beam-size"]), shrinking_beam=True,
                length_normalization=float(options["normalize"]),
                word_penalty=float(options.get("word-penalty", 0)),
                max_length_factor=float(options.get("max-length-factor", 3)),
                max_decoding_length=1000)


@pytest.fixture(scope="module", params=NAMES)
def converted(request, tmp_path_factory):
    name = request.param
    if os.path.exists(os.path.join(FIXTURES, name, "vocab.spm")):
        pytest.importorskip("sentencepiece")
    out = str(tmp_path_factory.mktemp(name) / "model")
    assert cli_main(["convert", "--from", "marian",
                     os.path.join(FIXTURES, name, "model.npz"), "-o", out]) == 0
    return name, rnnsearch.Translator(out)


def _close(got: float, want: float) -> bool:
    return abs(got - want) <= 1e-4 + 1e-5 * abs(want)


def test_decodes_as_marian(converted):
    name, translator = converted
    expected = load_expected("marian", name)
    sources = [translator.tokenize(s) for s in expected["sources"]]  # SentencePiece or spaces
    for setting, decoding in expected["decodings"].items():
        if setting == "decoder_yml":  # marian-decoder -c model.npz.decoder.yml: no options,
            options, kind = {}, None  # the converted model's decoding defaults instead
            K = expected["decoder_yml"].get("beam-size", 12)
        else:
            options = _search_options(_options(decoding["options"]))
            kind = parse_alignment(_options(decoding["options"])["alignment"])
            K = options["beam_size"]
        lines = [_parse(line) for line in decoding["nbest"]]
        results = translator.translate_batch(sources, num_hypotheses=K, return_scores=True,
                                             return_attention=True, include_eos_attention=True,
                                             **options)
        for i, (source, result) in enumerate(zip(sources, results)):
            want = [line for line in lines if line["index"] == i]
            where = f"{name} {setting} sentence {i} {expected['sources'][i]!r}"
            if not source:  # Marian: K empty hypotheses; rnnsearch: one (docs)
                assert result.hypotheses == [[]] and all(not w["tokens"] for w in want), where
                continue
            assert [translator.detokenize(h) for h in result.hypotheses] == \
                [w["text"] for w in want], where
            for h, w in enumerate(want):
                assert _close(result.scores[h], w["score"]), (where, h)
                assert _close(result.log_probs[h], w["log_prob"]), (where, h)
                if kind is None:
                    continue
                if kind == "soft":
                    marian = np.array([[float(a) for a in row.split(",")]
                                       for row in w["alignment"].split()])
                    np.testing.assert_allclose(result.attention[h], marian, atol=1e-5,
                                               err_msg=where)
                else:
                    assert alignment(result.attention[h], kind) == w["alignment"], (where, h)


def test_cli_prints_marian_nbest_lines(tmp_path):
    name = "s2s_deep_ln_tied"
    expected = load_expected("marian", name)
    decoding = expected["decodings"]["beam5_penalties"]
    model = str(tmp_path / "model")
    convert_marian(os.path.join(FIXTURES, name, "model.npz"), model)
    source = tmp_path / "source.txt"
    source.write_text("\n".join(expected["sources"]) + "\n")
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert cli_main(["translate", "-m", model, "-i", str(source), "-q", "--beam-size", "5",
                         "--n-best", "5", "--shrinking-beam", "--length-normalization", "1",
                         "--word-penalty", "0.5", "--max-length-factor", "1.2",
                         "--output-format", "marian-nbest", "--alignment", "0.2"]) == 0
    got = [_parse(line) for line in buffer.getvalue().splitlines()]
    want = [_parse(line) for line in decoding["nbest"]
            if expected["sources"][int(line.split(" ||| ")[0])]]  # the empty line: docs
    got = [g for g in got if expected["sources"][g["index"]]]
    assert [(g["index"], g["tokens"], g["alignment"]) for g in got] == \
        [(w["index"], w["tokens"], w["alignment"]) for w in want]
    assert all(_close(g["score"], w["score"]) and _close(g["log_prob"], w["log_prob"])
               for g, w in zip(got, want))
    buffer = io.StringIO()
    with redirect_stdout(buffer):  # the best hypothesis with its hard alignment
        assert cli_main(["translate", "-m", model, "-i", str(source), "-q", "--beam-size", "1",
                         "--shrinking-beam", "--output-format", "marian", "--alignment",
                         "hard"]) == 0
    greedy = [_parse(line) for line in expected["decodings"]["greedy"]["nbest"]]
    assert buffer.getvalue().splitlines() == [
        f"{' '.join(g['tokens'])} ||| {g['alignment']}" if expected["sources"][g["index"]]
        else " ||| " for g in greedy]


def test_converted_config(tmp_path):
    config, tensors, source, target, files = build(os.path.join(FIXTURES, "nematus_deep_ln",
                                                                 "model.npz"))
    assert files == {}  # no tokenizer model to copy for .yml vocabularies
    assert config["decoder"]["type"] == "conditional"
    assert config["decoder"]["base_cell_depth"] == 4
    assert config["encoder"]["cell_depth"] == 2 and config["encoder"]["layer_norm"] == "split"
    assert config["decoder"]["start_embedding"] == "zeros"
    assert config["source"]["add_eos"] and config["special_tokens"]["eos"] == "</s>"
    assert config["target"]["suppress_tokens"] == ["<unk>"]
    assert source[:2] == ["</s>", "<unk>"] and target[:2] == ["</s>", "<unk>"]
    # tied output: the target embedding is the output matrix
    np.testing.assert_array_equal(tensors["decoder.output.weight"],
                                  tensors["decoder.embedding.weight"])
    # marian-decoder's options saved with the model are its decoding defaults
    assert config["decoding"] == {"beam_size": 12, "shrinking_beam": True,
                                  "length_normalization": 0.0, "word_penalty": 0.0,
                                  "max_length_factor": 3.0, "max_decoding_length": 3000}
    config = build(os.path.join(FIXTURES, "s2s_deep_ln_tied", "model.npz"))[0]
    assert config["decoding"]["beam_size"] == 4 and config["decoding"]["word_penalty"] == 0.3


def test_sentencepiece_vocabulary(tmp_path):
    """A .spm vocabulary becomes the tokenizer: raw text in, raw text out, as marian-decoder
    (the pieces come from the SentencePiece model; the file is copied into the directory)."""
    pytest.importorskip("sentencepiece")
    name = "s2s_spm"
    out = str(tmp_path / "model")
    convert_marian(os.path.join(FIXTURES, name, "model.npz"), out)
    translator = rnnsearch.Translator(out)
    assert translator.config["source"]["tokenizer"] == "sentencepiece"
    assert os.path.isfile(os.path.join(out, translator.config["target"]["tokenizer_model"]))
    expected = load_expected("marian", name)
    best = [_parse(line) for line in expected["decodings"]["decoder_yml"]["nbest"]]
    want = [next(b["text"] for b in best if b["index"] == i)
            for i in range(len(expected["sources"]))]
    with pytest.warns(UserWarning, match="unknown"):  # "z": SentencePiece's <unk>
        assert translator.translate(expected["sources"]) == want  # the model's defaults


def test_bad_decoder_options(tmp_path):
    path = _copy_fixture(tmp_path)
    with open(path + ".decoder.yml", "a") as f:
        f.write("beam-size: 0\n")
    with pytest.raises(rnnsearch.ModelError, match="beam-size"):
        build(path)


def _copy_fixture(tmp_path, name="s2s_base") -> str:
    dest = tmp_path / name
    shutil.copytree(os.path.join(FIXTURES, name), dest)
    return str(dest / "model.npz")


def _rewrite(npz_path: str, change) -> None:
    """Apply change(items) to a .npz in place."""
    with np.load(npz_path) as npz:
        items = {k: npz[k] for k in npz.files}
    change(items)
    np.savez(npz_path, **items)


def _set_options(npz_path: str, **updates) -> None:
    import yaml

    def change(items):
        options = yaml.safe_load(bytes(items["special:model.yml"]).rstrip(b"\0").decode())
        options.update({k.replace("_", "-"): v for k, v in updates.items()})
        items["special:model.yml"] = np.frombuffer(yaml.safe_dump(options).encode() + b"\0",
                                                   dtype=np.int8)
    _rewrite(npz_path, change)


def test_model_yml_beside_the_weights(tmp_path):
    """Without special:model.yml, the options come from model.npz.yml (Marian's training
    config), and the model decodes the same."""
    path = _copy_fixture(tmp_path)
    with np.load(path) as npz:
        text = bytes(npz["special:model.yml"]).rstrip(b"\0").decode()
    _rewrite(path, lambda items: items.pop("special:model.yml"))
    with pytest.raises(rnnsearch.ModelError, match="model.npz.yml"):
        build(path)
    with open(path + ".yml", "w") as f:
        f.write(text)
    a = build(path)[1]
    b = build(os.path.join(FIXTURES, "s2s_base", "model.npz"))[1]
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_refuses_a_transformer():
    with pytest.raises(rnnsearch.ModelError, match="type 'transformer'"):
        build(os.path.join(FIXTURES, "refused_transformer", "model.npz"))


@pytest.mark.parametrize("updates, message", [
    (dict(enc_cell="lstm"), "--enc-cell 'lstm'"),
    (dict(dec_cell="mgru"), "--dec-cell 'mgru'"),
    (dict(enc_type="bi-unidirectional"), "--enc-type"),
    (dict(type="multi-s2s"), "type 'multi-s2s'"),
    (dict(right_left=True), "--right-left"),
    (dict(factors_dim_emb=8), "--factors-dim-emb"),
    (dict(some_new_option=3), "--some-new-option"),
    (dict(type="nematus", enc_cell="gru-nematus", dec_cell="gru-nematus",
          tied_embeddings_all=True), "--tied-embeddings-all"),
    (dict(type="amun", enc_depth=2), "--enc-depth"),
    (dict(dim_rnn=0), "--dim-rnn"),
])
def test_refuses_options_outside_the_list(tmp_path, updates, message):
    path = _copy_fixture(tmp_path)
    _set_options(path, **updates)
    with pytest.raises(rnnsearch.ModelError, match=message):
        build(path)


def test_vocabulary_must_match_the_weights(tmp_path):
    model = os.path.join(FIXTURES, "s2s_base", "model.npz")
    other = os.path.join(FIXTURES, "amun", "vocab.yml")  # 26 entries, the model has 14
    with pytest.raises(rnnsearch.ModelError, match="dim-vocabs"):
        build(model, [other, os.path.join(FIXTURES, "s2s_base", "vocab.tgt.yml")])
    broken = tmp_path / "vocab.yml"
    broken.write_text('"</s>": 0\n"<unk>": 1\na: 1\n')
    with pytest.raises(rnnsearch.ModelError, match="id 1"):
        build(model, [str(broken), str(broken)])
    lacking = tmp_path / "lacking.txt"
    lacking.write_text("\n".join(f"w{i}" for i in range(14)) + "\n")
    with pytest.raises(rnnsearch.ModelError, match="</s>"):
        build(model, [str(lacking), os.path.join(FIXTURES, "s2s_base", "vocab.tgt.yml")])


def test_refuses_broken_weights(tmp_path):
    path = _copy_fixture(tmp_path)
    _rewrite(path, lambda items: items.update(decoder_extra=np.zeros((2, 2), np.float32)))
    with pytest.raises(rnnsearch.ModelError, match="decoder_extra"):
        build(path)
    path = _copy_fixture(tmp_path / "b")
    _rewrite(path, lambda items: items.update(decoder_cell1_U=items["decoder_cell1_U"][:, :5]))
    with pytest.raises(rnnsearch.ModelError, match="decoder_cell1_U"):
        build(path)
    path = _copy_fixture(tmp_path / "c")
    _rewrite(path, lambda items: items["encoder_Wemb"].__setitem__((0, 0), np.nan))
    with pytest.raises(rnnsearch.ModelError, match="non-finite"):
        build(path)
    path = _copy_fixture(tmp_path / "d")
    with open(path, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(rnnsearch.ModelError, match="npz"):
        build(path)
    with pytest.raises(rnnsearch.ModelError, match="not found"):
        build(str(tmp_path / "missing.npz"))


def test_no_pickles(tmp_path):
    """An .npz holding a pickled object array is refused, never unpickled."""
    path = tmp_path / "model.npz"
    with zipfile.ZipFile(path, "w") as z, z.open("evil.npy", "w") as f:
        np.lib.format.write_array(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(rnnsearch.ModelError):
        build(str(path))


def test_cli_help_lists_options(capsys):
    with pytest.raises(SystemExit):
        cli_main(["convert", "--from", "marian", "--help"])
    text = capsys.readouterr().out
    for option in ("--vocabs", "--decoder-config", "--model-config"):
        assert option in text


def test_vocabularies_of_a_moved_model(tmp_path):
    """decoder.yml names the vocabularies by their paths at training time: a model moved
    since then finds them beside the YAML; without a decoder.yml --vocabs is needed."""
    path = _copy_fixture(tmp_path)
    decoder = path + ".decoder.yml"
    with open(decoder, "w") as f:
        f.write("relative-paths: false\nmodels:\n  - /gone/model.npz\nvocabs:\n"
                "  - /gone/train/vocab.src.yml\n  - /gone/train/vocab.tgt.yml\n")
    assert build(path)[2][:2] == ["</s>", "<unk>"]
    os.remove(decoder)
    with pytest.raises(rnnsearch.ModelError, match="--vocabs"):
        build(path)
