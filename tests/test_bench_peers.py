"""The peer benchmark (rnnsearch.bench.peers, `rnnsearch bench --compare`) in its tiniest
mode: the small model exported to ONNX, converted, checked identical across rnnsearch,
ONNX Runtime and PyTorch, timed, and reported."""
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from rnnsearch.bench.peers import ENGINES, top_k  # noqa: E402
from rnnsearch.cli import main as cli_main  # noqa: E402

TINY = ["--quick", "--size", "small", "--threads", "1", "--repeat", "1", "--sentences", "1",
        "--batch-size", "3", "--target-length", "6"]


def test_tiny_compare_run(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert cli_main(["bench", "--compare", *TINY, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    results = json.loads(out.read_text())
    (small,) = results["sizes"]
    assert small["onnx_conversion"] == "ok"
    assert small["identity_check"] == {"passed": True, "problems": []}
    agreement = small["int8_greedy_agreement"]
    assert 0.0 <= agreement["positions"] <= 1.0 and 0.0 <= agreement["common_prefix"] <= 6
    assert [(c["case"], c["threads"]) for c in small["cases"]] == [
        ("batch 1, greedy", 1), ("batch 1, beam 5", 1), ("batch 3, beam 5", 1)]
    for case in small["cases"]:
        assert set(case["ms_per_sentence"]) == set(ENGINES)
        assert all(len(v) == 1 and v[0] > 0 for v in case["ms_per_sentence"].values())
    floors = small["floors"]
    # per step: GRU 768x(64+512) + 768x256 + biases, readout 512x(256+512+64) + bias,
    # output 73x256 + bias, attention query 256x256 + bias + v, one embedding row of 64
    step_floats = (768 * 576 + 768 * 256 + 2 * 768 + 512 * 832 + 512 + 73 * 256 + 73
                   + 256 * 256 + 256 + 256 + 64)
    assert floors["decoder_step_bytes"] == 4 * step_floats
    assert floors["beam_flops"] > 0 and 0 < floors["beam_fraction"]

    assert "identity check, greedy and beam 5 on 3 sentences: PASSED" in printed
    rows = [line for line in printed.splitlines() if line.startswith("| batch")]
    assert [row.split(" | ")[0] for row in rows] == ["| batch 1, greedy", "| batch 1, beam 5",
                                                      "| batch 3, beam 5"]
    assert all(row.count("×") == 2 for row in rows)
    assert "memory bandwidth floor" in printed and "sgemm floor" in printed


def test_top_k_is_best_first():
    totals = np.array([[0.5, 2.0, 2.0, -1.0, 3.0],
                       [-np.inf, 1.0, 4.0, 0.0, 2.0]], np.float32)
    assert top_k(totals, 3).tolist() == [[4, 1, 2], [2, 4, 1]]
    assert top_k(totals, 1).tolist() == [[4], [2]]


def test_conversion_failure_falls_back_to_export(tmp_path, monkeypatch):
    import torch

    import rnnsearch
    from rnnsearch.bench import peers as bench_peers
    from rnnsearch.convert import onnx as onnx_format

    def refuse(*args, **kwargs):
        raise rnnsearch.ModelError("decoder graph: unsupported")

    torch.set_num_threads(1)
    size = bench_peers.small_size(None, 16, None)
    model = bench_peers.random_model(size.config, size.source_vocab, size.target_vocab)
    graphs = bench_peers.export_onnx(model, str(tmp_path))
    monkeypatch.setattr(onnx_format, "convert_onnx", refuse)
    path, failure = bench_peers.rnnsearch_model_dir(model, graphs, size, str(tmp_path))
    assert failure == "decoder graph: unsupported"
    assert rnnsearch.Translator(path).config["decoder"]["type"] == "bahdanau"
