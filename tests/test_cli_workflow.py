"""rnnsearch score, the model's decoding defaults on the command line, --replace-unk."""
import json
import os
import shutil

import pytest

import rnnsearch
from rnnsearch.cli import main


def test_score_command(small_model_dir, tmp_path, capsys):
    (tmp_path / "src.txt").write_text("s1 s2 s3\ns4\n", encoding="utf-8")
    (tmp_path / "tgt.txt").write_text("t1 t2\n\n", encoding="utf-8")
    assert main(["score", "-m", small_model_dir, "-s", str(tmp_path / "src.txt"), "-t",
                 str(tmp_path / "tgt.txt"), "--with-tokens"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = rnnsearch.Translator(small_model_dir).score_batch(
        [["s1", "s2", "s3"], ["s4"]], [["t1", "t2"], []])
    for line, result in zip(lines, expected):
        total, tokens = line.split(" ||| ")
        assert float(total) == pytest.approx(result.total, abs=1e-6)
        assert [t.rsplit(":", 1)[0] for t in tokens.split()] == result.tokens
    (tmp_path / "tgt.txt").write_text("t1\n", encoding="utf-8")
    assert main(["score", "-m", small_model_dir, "-s", str(tmp_path / "src.txt"), "-t",
                 str(tmp_path / "tgt.txt")]) == 1
    assert "has 2 lines" in capsys.readouterr().err


def test_translate_uses_the_models_decoding_section(small_model_dir, tmp_path, capsys):
    model = tmp_path / "m"
    shutil.copytree(small_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["decoding"] = {"beam_size": 3, "num_hypotheses": 2, "max_decoding_length": 4}
    (model / "config.json").write_text(json.dumps(config))
    (tmp_path / "in.txt").write_text("s1 s2\n", encoding="utf-8")
    assert main(["translate", "-m", str(model), "-i", str(tmp_path / "in.txt"),
                 "--with-scores", "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2   # the model's n-best
    expected = rnnsearch.Translator(str(model)).translate_batch(
        [["s1", "s2"]], beam_size=3, num_hypotheses=2, max_decoding_length=4,
        return_scores=True)[0]
    assert [line.split("\t")[1] for line in lines] == [" ".join(h) for h in
                                                       expected.hypotheses]
    # a caller's option wins; a smaller beam lowers the model's n-best
    assert main(["translate", "-m", str(model), "-i", str(tmp_path / "in.txt"),
                 "--beam-size", "1", "-q"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    config["decoding"] = {"beam_size": 0}
    (model / "config.json").write_text(json.dumps(config))
    assert main(["translate", "-m", str(model), "-i", str(tmp_path / "in.txt")]) == 1
    assert "decoding.beam_size" in capsys.readouterr().err


def test_replace_unk_flag(small_model_dir, tmp_path, capsys):
    translator = rnnsearch.Translator(small_model_dir)
    ban = [t for t in translator.target_vocab.tokens if t not in ("<unk>", "</s>", "t1")]
    (tmp_path / "in.txt").write_text("s3 s1 s7\n", encoding="utf-8")
    (tmp_path / "table.txt").write_text("s3|||THREE\ns1|||ONE\ns7|||SEVEN\n", encoding="utf-8")
    args = ["translate", "-m", small_model_dir, "-i", str(tmp_path / "in.txt"),
            "--max-length", "6", "--min-length", "4", "-q", "--suppress"] + ban
    assert main(args) == 0
    plain = capsys.readouterr().out.split()
    assert "<unk>" in plain
    assert main(args + ["--replace-unk", "--phrase-table", str(tmp_path / "table.txt")]) == 0
    replaced = capsys.readouterr().out.split()
    assert "<unk>" not in replaced and len(replaced) == len(plain)
    assert {t for t, p in zip(replaced, plain) if p == "<unk>"} <= {"THREE", "ONE", "SEVEN"}
    assert os.path.exists(tmp_path / "table.txt")
