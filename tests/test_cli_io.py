"""The command line where it meets the shell: streaming from pipes and batching files,
encodings, a closed stdout, file permissions, --version, messages in the command's own
terms, and errors that say what kind of model a path really holds."""
import importlib.metadata
import json
import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rnnsearch
from rnnsearch.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
POSIX = pytest.mark.skipif(os.name != "posix", reason="POSIX pipes, umask and signals")


def run(args, stdin="", **kwargs):
    return subprocess.run([sys.executable, "-m", "rnnsearch", *args], input=stdin,
                          capture_output=True, text=True, timeout=120, **kwargs)


def expected_lines(model_dir, lines, **options):
    tr = rnnsearch.Translator(model_dir)
    return [" ".join(r.hypotheses[0]) for r in
            tr.translate_batch([line.split() for line in lines], **options)]


# ------------------------------------------------------------------ streaming, batching

def _read_line(stream, timeout):
    """One line from a pipe, or None if none arrives within `timeout` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else None


@POSIX
def test_a_pipe_gets_each_line_back_before_the_next_is_sent(small_model_dir):
    """(echo s1 s2; sleep; echo s3) | rnnsearch translate answers the first line at once."""
    process = subprocess.Popen([sys.executable, "-m", "rnnsearch", "translate", "-m",
                                small_model_dir, "-q"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        want = expected_lines(small_model_dir, ["s1 s2", "s3"], beam_size=5)
        process.stdin.write("s1 s2\n")
        process.stdin.flush()
        assert _read_line(process.stdout, 60) == want[0] + "\n"   # stdin is still open
        process.stdin.write("s3\n")
        process.stdin.flush()
        assert _read_line(process.stdout, 60) == want[1] + "\n"
        process.stdin.close()
        assert process.wait(60) == 0
    finally:
        process.kill()


def _batch_sizes(monkeypatch, model_dir, args, stdin=None):
    """The number of sentences in every engine call of `rnnsearch translate args`."""
    from rnnsearch.translator import Translator
    sizes, translate_batch = [], Translator.translate_batch

    def counting(self, source, **options):
        sizes.append(len(source))
        return translate_batch(self, source, **options)

    monkeypatch.setattr(Translator, "translate_batch", counting)
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["translate", "-m", model_dir, "-q", *args]) == 0
    return sizes


def test_files_are_translated_in_batch_size_batches(small_model_dir, tmp_path, monkeypatch):
    source = tmp_path / "in.txt"
    source.write_text("".join(f"s{i % 9 + 1} s2\n" for i in range(7)))
    out = tmp_path / "out.txt"
    assert _batch_sizes(monkeypatch, small_model_dir,
                        ["-i", str(source), "-o", str(out), "--batch-size", "3"]) == [3, 3, 1]
    with open(source, encoding="utf-8") as redirected:   # stdin redirected from a file
        assert _batch_sizes(monkeypatch, small_model_dir, ["--batch-size", "3"],
                            stdin=redirected) == [3, 3, 1]


@POSIX
def test_a_pipe_batches_the_lines_that_have_arrived(small_model_dir, monkeypatch, capsys):
    read, write = os.pipe()
    os.write(write, b"".join(b"s%d\n" % (i % 9 + 1) for i in range(7)))
    os.close(write)
    with os.fdopen(read, "r") as pipe:
        assert _batch_sizes(monkeypatch, small_model_dir, ["--batch-size", "3"],
                            stdin=pipe) == [3, 3, 1]
    assert len(capsys.readouterr().out.splitlines()) == 7


# ------------------------------------------------------------------ encodings

def test_stdin_and_input_file_decode_a_latin1_file_alike(small_model_dir, tmp_path):
    """The same bytes through -i, a redirected file and a pipe: the same error without
    --encoding, the same text (and the same translation) with it."""
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("s1 café\r\ns2\n".encode("latin-1"))

    def three_ways(*options):
        args = [sys.executable, "-m", "rnnsearch", "translate", "-m", small_model_dir,
                *options]
        with open(latin1, "rb") as f:
            yield subprocess.run(args + ["-i", str(latin1)], capture_output=True, timeout=120)
            yield subprocess.run(args, stdin=f, capture_output=True, timeout=120)
            yield subprocess.run(args, input=latin1.read_bytes(), capture_output=True,
                                 timeout=120)

    for done in three_ways():
        assert done.returncode == 1
        assert b"line 1: not valid utf-8 (byte 0xe9 at byte 7" in done.stderr
        assert b"--encoding" in done.stderr and b"Traceback" not in done.stderr
    want = expected_lines(small_model_dir, ["s1 café", "s2"], beam_size=5)
    for done in three_ways("--encoding", "latin-1"):
        assert done.returncode == 0, done.stderr
        assert done.stdout.decode("utf-8").splitlines() == want
        assert "unknown to the model (translated as <unk>): 'café'" in done.stderr.decode()


def test_unknown_encoding_is_a_clear_error(small_model_dir):
    done = run(["translate", "-m", small_model_dir, "--encoding", "klingon"], "s1\n")
    assert done.returncode == 1 and "--encoding: unknown encoding 'klingon'" in done.stderr


# ------------------------------------------------------------------ output

@POSIX
def test_a_closed_stdout_stops_quietly(small_model_dir, tmp_path):
    """`rnnsearch translate < many-lines | head -1`: no message, the SIGPIPE status."""
    source = tmp_path / "in.txt"
    source.write_text("s1 s2 s3\n" * 400)
    with open(source) as stdin:
        process = subprocess.Popen([sys.executable, "-m", "rnnsearch", "translate", "-m",
                                    small_model_dir, "--batch-size", "4"], stdin=stdin,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        process.stdout.readline()
        process.stdout.close()                    # what head does after one line
        stderr = process.stderr.read().decode()
        assert process.wait(120) == 141
    assert stderr == ""


def test_unknown_symbol_warnings_do_not_run_into_the_progress_bar(small_model_dir, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("s1 qqq\ns2\ns3 zzz\n")
    done = run(["translate", "-m", small_model_dir, "-i", str(source), "-o",
                str(tmp_path / "out.txt"), "--batch-size", "1"])
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.split("\n") if "unknown to the model" in line]
    assert len(warnings) == 2
    for line in warnings:   # each on a line of its own, after the bar was cleared
        assert line.split("\r")[-1].startswith("rnnsearch: line "), repr(line)


@POSIX
def test_written_files_follow_the_umask(small_model_dir, tmp_path):
    """translate -o, a model directory (convert, quantize, tools/train_g2p.py write
    through write_model_dir): 0666 less the umask, not mkstemp's 0600."""
    source = tmp_path / "in.txt"
    source.write_text("s1\n")
    script = ("import sys\n"
              "from rnnsearch.quantize import quantize_model_dir\n"
              "from rnnsearch.cli import main\n"
              "out = sys.argv[1]\n"
              "quantize_model_dir(sys.argv[2], out + '/model')\n"
              "sys.exit(main(['translate', '-m', sys.argv[2], '-i', sys.argv[3], '-o',"
              " out + '/out.txt', '-q']))\n")
    for umask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        out = tmp_path / f"umask-{umask:03o}"
        out.mkdir()
        done = subprocess.run([sys.executable, "-c", script, str(out), small_model_dir,
                               str(source)], capture_output=True, text=True, timeout=120,
                              preexec_fn=lambda umask=umask: os.umask(umask))
        assert done.returncode == 0, done.stderr
        written = [out / "out.txt", *sorted((out / "model").iterdir())]
        assert len(written) == 5
        for path in written:
            assert path.stat().st_mode & 0o777 == mode, (oct(umask), path.name)


# ------------------------------------------------------------------ --version, flags

def test_version():
    done = run(["--version"])
    assert done.returncode == 0
    assert done.stdout.strip() == f"rnnsearch {importlib.metadata.version('rnnsearch')}"
    assert importlib.metadata.version("rnnsearch") == rnnsearch.__version__


@pytest.mark.parametrize("args, flags", [
    (["--threads", "0"], ["--threads"]),
    (["--beam-size", "0"], ["--beam-size"]),
    (["--n-best", "9", "--beam-size", "2"], ["--n-best", "--beam-size"]),
    (["--max-length", "0"], ["--max-length"]),
    (["--min-length", "9", "--max-length", "3"], ["--min-length", "--max-length"]),
    (["--suppress", "nope"], ["--suppress"]),
])
def test_messages_name_the_flags(small_model_dir, args, flags):
    done = run(["translate", "-m", small_model_dir, *args], "s1\n")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    for flag in flags:
        assert flag in done.stderr
    for api_name in ("intra_threads", "beam_size", "num_hypotheses", "decoding_length",
                     "suppress_tokens"):
        assert api_name not in done.stderr


# ------------------------------------------------------------------ the wrong kind of model

def _ctranslate2_dir(path):
    """The files `ct2-*-converter` writes (CTranslate2 3.x/4.x)."""
    path.mkdir()
    (path / "model.bin").write_bytes(b"\0" * 16)
    (path / "config.json").write_text(json.dumps({"add_source_bos": False, "add_source_eos": False,
                                                  "bos_token": "<s>", "eos_token": "</s>",
                                                  "unk_token": "<unk>", "layer_norm_epsilon": None}))
    (path / "shared_vocabulary.json").write_text(json.dumps(["<unk>", "<s>", "</s>"]))
    return path


def _hugging_face_dir(path):
    """A Transformers save_pretrained directory (config.json with model_type)."""
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"architectures": ["MarianMTModel"],
                                                  "model_type": "marian", "d_model": 512,
                                                  "transformers_version": "4.46.0"}))
    (path / "model.safetensors").write_bytes(b"\0" * 16)
    return path


@pytest.mark.parametrize("make, says", [
    (_ctranslate2_dir, "a CTranslate2 model directory"),
    (_hugging_face_dir, "a Hugging Face Transformers model directory (model_type 'marian')"),
])
def test_another_toolkits_model_directory_is_named(tmp_path, make, says):
    path = make(tmp_path / "model")
    done = run(["translate", "-m", str(path)], "hello\n")
    assert done.returncode == 1
    assert says in done.stderr and "unknown key" not in done.stderr
    with pytest.raises(rnnsearch.ModelError, match="not an rnnsearch model directory"):
        rnnsearch.Translator(str(path))


def test_a_checkpoint_file_given_as_the_model_says_how_to_convert_it():
    checkpoint = FIXTURES / "opennmt" / "brnn_gru_mlp_feed" / "model.pt"
    done = run(["translate", "-m", str(checkpoint)], "a\n")
    assert done.returncode == 1
    assert "not found" not in done.stderr
    assert "checkpoint of OpenNMT-py" in done.stderr
    assert f"rnnsearch convert --from opennmt-py {checkpoint}" in done.stderr
    joey = FIXTURES / "joeynmt" / "gru_luong_zero_tied_scaled"
    done = run(["translate", "-m", str(joey)], "a\n")
    assert "JoeyNMT model directory" in done.stderr and "--from joeynmt" in done.stderr


def test_an_opennmt_checkpoint_given_to_from_torch_is_named(tmp_path):
    pytest.importorskip("torch")
    checkpoint = FIXTURES / "opennmt" / "brnn_gru_mlp_feed" / "model.pt"
    done = run(["convert", "--from", "torch", "--checkpoint", str(checkpoint), "--mapping",
                "m.json", "--config", "a.json", "--source-vocab", "s", "--target-vocab", "t",
                "-o", str(tmp_path / "out")])
    assert done.returncode == 1
    assert "is a checkpoint of OpenNMT-py, not a state_dict" in done.stderr
    assert "--from opennmt-py" in done.stderr and "weights_only" not in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_joeynmt_on_a_missing_path_says_so(tmp_path):
    pytest.importorskip("torch")
    done = run(["convert", "--from", "joeynmt", str(tmp_path / "nope"), "-o",
                str(tmp_path / "out")])
    assert done.returncode == 1
    assert f"JoeyNMT model not found: {tmp_path / 'nope'}" in done.stderr
    assert "config" not in done.stderr.split("not found")[0]


@pytest.mark.parametrize("reader", ["rnnsearch.convert.common.checkpoint",
                                    "rnnsearch.convert.torch.converter"])
def test_missing_torch_points_at_the_pinned_extra(reader, tmp_path):
    script = ("import sys; sys.modules['torch'] = None\n"   # import torch now fails
              f"import {reader} as m\n"
              "try:\n"
              "    m.load_checkpoint(sys.argv[1])\n"
              "except Exception as e:\n"
              "    print(type(e).__name__, e)\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "x.pt")],
                          capture_output=True, text=True, timeout=60)
    assert "ModelError" in done.stdout and "pip install 'rnnsearch[torch]'" in done.stdout
    assert "pip install torch" not in done.stdout
