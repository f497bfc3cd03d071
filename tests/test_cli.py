"""The command line as a user runs it."""
import os
import subprocess
import sys

import pytest

import rnnsearch
from rnnsearch.cli import main


def run(args, stdin=""):
    return subprocess.run([sys.executable, "-m", "rnnsearch", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_translate_stdin_matches_api(small_model_dir):
    lines = ["s1 s2 s3", "", "s4 s5 zzz", "s7"]
    done = run(["translate", "-m", small_model_dir, "--beam-size", "3", "-q"],
               "\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    tr = rnnsearch.Translator(small_model_dir)
    expected = [" ".join(r.hypotheses[0]) for r in
                tr.translate_batch([l.split() for l in lines], beam_size=3)]
    assert done.stdout.split("\n")[:-1] == expected
    assert expected[1] == ""


def test_translate_files_nbest_scores_and_unknown_warning(small_model_dir, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("s1 s2 qqq\ns3\n")
    out = tmp_path / "out.txt"
    done = run(["translate", "-m", small_model_dir, "-i", str(src), "-o", str(out),
                "--n-best", "2", "--beam-size", "4", "--with-scores", "--batch-size", "1"])
    assert done.returncode == 0, done.stderr
    rows = out.read_text().split("\n")[:-1]
    assert len(rows) == 4
    scores = [float(r.split("\t")[0]) for r in rows]
    assert scores[0] >= scores[1] and scores[2] >= scores[3]
    assert "line 1" in done.stderr and "'qqq'" in done.stderr


def test_failed_translation_leaves_no_partial_file(small_model_dir, tmp_path):
    import json
    import shutil
    model = tmp_path / "m"
    shutil.copytree(small_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["source"]["max_length"] = 3
    (model / "config.json").write_text(json.dumps(config))
    src = tmp_path / "in.txt"
    src.write_text("s1\n" + "s1 s2 s3 s4 s5\n")
    out = tmp_path / "out.txt"
    done = run(["translate", "-m", str(model), "-i", str(src), "-o", str(out), "--batch-size", "1"])
    assert done.returncode == 1
    assert "longer than the model allows" in done.stderr
    assert "pass --truncate to cut it" in done.stderr   # the flag, not the API's truncate=True
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]
    done = run(["translate", "-m", str(model), "-i", str(src), "-o", str(out), "--truncate", "-q"])
    assert done.returncode == 0 and len(out.read_text().split("\n")) == 3


@pytest.mark.parametrize("args, message", [
    (["translate", "-m", "/nonexistent/model"], "model directory not found"),
    (["translate", "--beam-size", "0"], "--beam-size"),
    (["translate", "--n-best", "9", "--beam-size", "2"], "--n-best"),
    (["translate", "--max-length", "0"], "--max-length"),
])
def test_clear_errors(small_model_dir, args, message):
    if "-m" not in args:
        args = args + ["-m", small_model_dir]
    done = run(args, "s1\n")
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_inspect(small_model_dir, capsys):
    assert main(["inspect", small_model_dir]) == 0
    out = capsys.readouterr().out
    assert "bahdanau" in out and "parameters:" in out and "gru 16, bidirectional" in out


def test_bench_runs_quickly(capsys):
    assert main(["bench", "--no-torch", "--repeat", "1", "--batch1-sentences", "2",
                 "--target-length", "5", "--cases", "b1-greedy,b32-beam5"]) == 0
    out = capsys.readouterr().out
    assert "b1-greedy" in out and "b32-beam5" in out
    assert main(["bench", "--no-torch", "--repeat", "1", "--batch1-sentences", "1",
                 "--target-length", "3", "--cases", "b1-greedy", "--compute-type",
                 "bfloat16"]) == 0
    from rnnsearch._engine import kernel_isa
    out = capsys.readouterr().out
    assert f"compute type bfloat16, kernels: {kernel_isa('bfloat16')}" in out


def test_bench_says_what_its_torch_column_compares(capsys, tmp_path):
    """The PyTorch column is the reference model decoding the same batches with a batched
    beam search (not one sentence at a time), and the header says so."""
    pytest.importorskip("torch")
    assert main(["bench", "--repeat", "1", "--target-length", "4", "--cases", "b32-beam5",
                 "--size", "small"]) == 0
    out = capsys.readouterr().out
    assert "batched beam search" in out and "x torch" in out
    from rnnsearch.bench import runner
    from rnnsearch.bench.torch_search import TorchBeamSearch
    from rnnsearch.random_model import sized_config, write_random_model
    config, src, tgt = sized_config("small")
    write_random_model(str(tmp_path), config, src, tgt)
    assert isinstance(runner._load_reference(str(tmp_path)), TorchBeamSearch)


@pytest.mark.parametrize("compute_type", ["int8", "bfloat16"])
def test_compute_type_option(small_model_dir, compute_type):
    done = run(["translate", "-m", small_model_dir, "--compute-type", compute_type, "-q"],
               "s1 s2\n")
    assert done.returncode == 0 and done.stdout.strip()


def test_per_word_model_pronounces_each_word(tmp_path):
    """A per-word character model (like the G2P default): lower-cased, one source per word,
    outputs joined with the word separator; unknown characters are reported."""
    from rnnsearch.model_dir import write_model_dir
    from rnnsearch.random_model import SPECIALS, random_tensors
    from conftest import SMALL_CONFIG
    config = dict(SMALL_CONFIG, source={"tokenizer": "chars", "lowercase": True,
                                        "per_word": True})
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    src, tgt = SPECIALS + letters, SPECIALS + [f"P{i}" for i in range(21)]
    path = str(tmp_path / "g2p")
    write_model_dir(path, config, random_tensors(config, len(src), len(tgt), seed=5), src, tgt)
    done = run(["translate", "-m", path, "--beam-size", "2"], "Cat  dog\n\nA1\n")
    assert done.returncode == 0, done.stderr
    tr = rnnsearch.Translator(path)
    words = tr.translate_batch([list("cat"), list("dog"), list("a1")], beam_size=2)
    cat, dog, a1 = (" ".join(r.hypotheses[0]) for r in words)
    assert done.stdout.split("\n")[:-1] == [f"{cat} | {dog}", "", a1]
    assert "line 3" in done.stderr and "'1'" in done.stderr and "line 1" not in done.stderr
    assert tr.translate(["Cat dog", ""], beam_size=2) == [f"{cat} | {dog}", ""]


def test_alignment_output(small_model_dir):
    lines = ["s1 s2 s3 s4", "s5"]
    done = run(["translate", "-m", small_model_dir, "--beam-size", "2", "--with-alignment",
                "-q"], "\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    tr = rnnsearch.Translator(small_model_dir)
    results = tr.translate_batch([l.split() for l in lines], beam_size=2,
                                 return_attention=True)
    for row, line, result in zip(done.stdout.split("\n"), lines, results):
        text, pairs = row.split(" ||| ")
        assert text == " ".join(result.hypotheses[0])
        expected = [f"{j}-{t}" for t, j in enumerate(result.attention[0].argmax(axis=1))]
        assert pairs.split() == expected
        assert all(int(p.split("-")[0]) < len(line.split()) for p in pairs.split())
