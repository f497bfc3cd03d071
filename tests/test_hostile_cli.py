"""The command line and the batching of per-word models under hostile or careless use
(issue 13, items 6, 7, 8): lines split as written, nothing half-written left behind by a
signal, no model directory silently replaced, one-line errors, and one long line of a
per-word model decoded a batch of words at a time."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import rnnsearch
from rnnsearch.cli import main


def run(args, stdin=""):
    return subprocess.run([sys.executable, "-m", "rnnsearch", *args], input=stdin,
                          capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------- 7: lines, signals, -o

def test_input_file_splits_at_newlines_only(small_model_dir, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"s1 s2\rs3\ns4\r\ns5\n")     # a lone \r is part of line 1
    done = run(["translate", "-m", small_model_dir, "-i", str(src), "-q", "--beam-size", "2"])
    assert done.returncode == 0, done.stderr
    from_stdin = run(["translate", "-m", small_model_dir, "-q", "--beam-size", "2"],
                     stdin="s1 s2\rs3\ns4\r\ns5\n")
    assert len(done.stdout.split("\n")[:-1]) == 3
    assert done.stdout == from_stdin.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_during_translate_leaves_no_temporary_file(small_model_dir, tmp_path, signum):
    src = tmp_path / "in.txt"
    src.write_text("s1 s2 s3 s4 s5 s6 s7 s8\n" * 20000)
    out = tmp_path / "out.txt"
    child = subprocess.Popen([sys.executable, "-m", "rnnsearch", "translate", "-m",
                              small_model_dir, "-i", str(src), "-o", str(out), "-q",
                              "--batch-size", "8", "--beam-size", "4"],
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not [p for p in os.listdir(tmp_path)
                                               if p.startswith(".tmp-")]:
        time.sleep(0.05)          # until it is writing its temporary file
    assert child.poll() is None, "finished before the signal: make the input longer"
    child.send_signal(signum)
    child.wait(timeout=120)
    assert child.returncode == 128 + signum, child.stderr.read()
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_signal_before_the_write_block_leaves_no_temporary_file(small_model_dir, tmp_path,
                                                                monkeypatch):
    """The race the test above can hit: the signal lands after the temporary file exists but
    before atomic_write's `with` block begins (here: as its creation returns), where
    __exit__ never runs. The command still removes the file on its way out."""
    import rnnsearch.cli as cli
    import rnnsearch.safetensors_io as safetensors_io

    create = safetensors_io._new_sibling

    def created_then_interrupted(directory, name):
        fd, _ = create(directory, name)
        os.close(fd)
        raise cli._Terminated(signal.SIGTERM)

    monkeypatch.setattr(safetensors_io, "_new_sibling", created_then_interrupted)
    src = tmp_path / "in.txt"
    src.write_text("s1 s2\n")
    out = tmp_path / "out.txt"
    assert main(["translate", "-m", small_model_dir, "-i", str(src), "-o", str(out),
                 "-q"]) == 128 + signal.SIGTERM
    assert os.listdir(tmp_path) == ["in.txt"]


def test_convert_refuses_to_overwrite_a_directory_without_force(small_model_dir, tmp_path):
    pytest.importorskip("torch")
    fixture = os.path.join(os.path.dirname(__file__), "fixtures", "opennmt",
                           "brnn_gru_mlp_feed", "model.pt")
    target = tmp_path / "existing"
    shutil.copytree(small_model_dir, target)
    before = {p: (target / p).read_bytes() for p in os.listdir(target)}
    done = run(["convert", "--from", "opennmt-py", fixture, "-o", str(target)])
    assert done.returncode == 1
    assert "already exists; pass --force" in done.stderr and done.stderr.count("\n") == 1
    assert {p: (target / p).read_bytes() for p in os.listdir(target)} == before
    done = run(["convert", "--from", "opennmt-py", fixture, "-o", str(target), "--force"])
    assert done.returncode == 0, done.stderr
    rnnsearch.Translator(str(target))
    empty = tmp_path / "empty"
    empty.mkdir()                                  # an empty directory is fine
    assert run(["convert", "--from", "opennmt-py", fixture, "-o", str(empty)]).returncode == 0


# ---------------------------------------------------------------- 8: one-line errors

@pytest.mark.parametrize("args, stdin, message", [
    (["translate", "-m", "/nonexistent"], "", "model directory not found"),
    # the CLI names its own flags for the API's options (cli.py maps them)
    (["translate", "--beam-size", "2147483648"], "word\n", "--beam-size must be between"),
    (["translate", "--length-penalty", "1e39"], "word\n", "--length-penalty must be"),
    (["translate", "--length-penalty", "nan"], "word\n", "--length-penalty must be"),
    (["translate", "--max-length", "99999999999"], "word\n", "--max-length must be"),
    (["translate", "--threads", "99999999999"], "word\n", "--threads must be"),
    (["inspect", "/dev/null"], "", "model directory not found"),
    (["convert", "--from", "keras", "/dev/null", "--source-vocab", "x", "--target-vocab",
      "y", "-o", "OUT"], "", "not a regular file"),
])
def test_errors_are_one_line_without_traceback(tmp_path, args, stdin, message):
    args = [str(tmp_path / "o") if a == "OUT" else a for a in args]
    done = run(args, stdin)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_a_model_directory_with_hostile_config_is_one_line(small_model_dir, tmp_path):
    import json
    model = tmp_path / "m"
    shutil.copytree(small_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["encoder"]["num_layers"] = 10**8
    (model / "config.json").write_text(json.dumps(config))
    for command in (["translate", "-m", str(model)], ["inspect", str(model)]):
        done = run(command, "s1\n")
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert "encoder.num_layers" in done.stderr


# ---------------------------------------------------------------- 6: per-word batching

class _RecordingEngine:
    """Stands in for Translator._engine: records each engine call's batch size."""

    def __init__(self, engine):
        self.engine, self.batches = engine, []

    def translate(self, sources, **options):
        self.batches.append(len(sources))
        return self.engine.translate(sources, **options)

    def __getattr__(self, name):            # everything else is the engine's
        return getattr(self.engine, name)


def test_per_word_line_is_decoded_a_batch_of_words_at_a_time():
    translator = rnnsearch.Translator()          # the default model is per-word (G2P)
    assert translator.config["source"]["per_word"]
    line = " ".join(["word", "attention", "search"] * 200)      # 600 words, one line
    translator._engine = recorder = _RecordingEngine(translator._engine)
    out = translator.translate([line], beam_size=1, max_decoding_length=30)
    assert max(recorder.batches) == 32 and sum(recorder.batches) == 600
    one_call = rnnsearch.Translator().translate([line], beam_size=1, max_decoding_length=30,
                                                max_batch_size=0)
    assert out == one_call                       # the same results either way


def test_cli_batches_per_word_lines_by_words(monkeypatch, tmp_path, capsys):
    from rnnsearch import translator as module
    calls = []
    original = module.Translator.translate_batch

    def recording(self, source, **options):
        calls.append((len(source), options["max_batch_size"]))
        return original(self, source, **options)
    monkeypatch.setattr(module.Translator, "translate_batch", recording)
    monkeypatch.setattr("sys.stdin", open(os.devnull))
    src = tmp_path / "in.txt"
    src.write_text(" ".join(["word"] * 100) + "\nsearch\n")
    assert main(["translate", "-i", str(src), "--batch-size", "16", "-q",
                 "--beam-size", "1"]) == 0
    assert calls == [(101, 16)]
    assert len(capsys.readouterr().out.split("\n")) == 3
