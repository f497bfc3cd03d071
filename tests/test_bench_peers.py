"""The peer benchmark (rnnsearch.bench.peers, `rnnsearch bench --compare`) in its tiniest
mode: the small model exported to ONNX, converted, checked identical across rnnsearch,
ONNX Runtime and PyTorch (eager and oneDNN-prepacked), timed beside the int8 engines
(rnnsearch, ONNX Runtime and PyTorch dynamic int8) and rnnsearch bfloat16, and reported.
Not timed for speed: only that every engine ran and every table and record is there."""
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from rnnsearch.bench.peers import (BF16_ENGINES, ENGINES, FP32_ENGINES,  # noqa: E402
                                   INT8_ENGINES, top_k)
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
        for times in (case["ms_per_sentence"], case["cpu_ms_per_sentence"]):
            assert set(times) == set(ENGINES)
            assert all(len(v) == 1 and v[0] > 0 for v in times.values())
    # every fp32 peer gives rnnsearch fp32's tokens; int8 engines are only reported
    agreed = small["agreement_with_rnnsearch_fp32"]
    assert set(agreed) == set(ENGINES)
    for engine in FP32_ENGINES:
        assert agreed[engine]["greedy_sentences"] == agreed[engine]["beam_sentences"] == 1.0
    floors = small["floors"]
    # per step: GRU 768x(64+512) + 768x256 + biases, readout 512x(256+512+64) + bias,
    # output 73x256 + bias, attention query 256x256 + bias + v, one embedding row of 64
    step_floats = (768 * 576 + 768 * 256 + 2 * 768 + 512 * 832 + 512 + 73 * 256 + 73
                   + 256 * 256 + 256 + 256 + 64)
    assert floors["decoder_step_bytes"] == 4 * step_floats
    assert floors["beam_flops"] > 0 and 0 < floors["beam_fraction"]

    assert "identity check, greedy and beam 5 on 3 sentences: PASSED" in printed
    assert results["command"] in printed   # the command line heads the report
    fp32_part, rest = printed.split("### float32")[1].split("### int8")
    int8_part, bf16_part = rest.split("### bfloat16")
    # bfloat16 is timed against rnnsearch fp32 (its only peer)
    for part, engines in ((fp32_part, FP32_ENGINES), (int8_part, INT8_ENGINES),
                          (bf16_part, BF16_ENGINES + FP32_ENGINES[:1])):
        rows = [line.split(" | ") for line in part.splitlines() if line.startswith("| batch")]
        assert [(row[0], row[2]) for row in rows] == [
            (f"| {case}", engine) for case in ("batch 1, greedy", "batch 1, beam 5",
                                               "batch 3, beam 5") for engine in engines]
        # the engines of one precision are measured against its rnnsearch, wall and CPU
        assert all(row[-2:] == ["—", "— |"] if row[2] == engines[0]
                   else row[-2].endswith("×") and row[-1].endswith("× |") for row in rows)
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


@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_reset_before"])
def test_tuned_cells_compute_the_reference_cells(kind):
    """The linearized cells (two nn.Linear + gates) and their oneDNN-prepacked form give
    torch's own cells' outputs; dynamic int8 turns every product into a quantized one."""
    import torch
    from torch import nn

    from rnnsearch.bench.torch_tuned import (LinearGRUCell, LinearLSTMCell, PrepackedLinear,
                                             _replace_linears, dynamic_int8)
    from rnnsearch.reference.modules import GRUCellResetBefore, run_cell

    torch.manual_seed(0)
    cell = {"lstm": nn.LSTMCell(12, 16), "gru": nn.GRUCell(12, 16),
            "gru_reset_before": GRUCellResetBefore(12, 16)}[kind]
    linear = LinearLSTMCell(cell) if kind == "lstm" else LinearGRUCell(cell)
    packed = LinearLSTMCell(cell) if kind == "lstm" else LinearGRUCell(cell)
    _replace_linears(packed)
    assert all(isinstance(m, PrepackedLinear) for m in packed.children())
    x, h, c = torch.randn(5, 12), torch.randn(5, 16), torch.randn(5, 16)
    state = c if kind == "lstm" else None
    with torch.inference_mode():
        expected = run_cell(cell, x, h, state)
        for tuned in (linear, packed):
            for got, want in zip(run_cell(tuned, x, h, state), expected):
                if want is not None:
                    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.decoder = nn.Module()
            self.decoder.layers = nn.ModuleList([cell])

    quantized = dynamic_int8(Holder()).decoder.layers[0]
    products = list(quantized.children())
    assert products and all(type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")
                            for m in products)
