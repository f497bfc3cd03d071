"""Attention heatmaps: the pictures themselves are read back (PNG pixels, SVG text) and
checked against the attention they show."""
import os
import re
import sys

import numpy as np
import pytest

import rnnsearch
from rnnsearch.cli import main as cli_main

matplotlib = pytest.importorskip("matplotlib")
from matplotlib import colormaps  # noqa: E402
from matplotlib.image import imread  # noqa: E402


@pytest.fixture(scope="module")
def translator(small_model_dir):
    return rnnsearch.Translator(small_model_dir)


def _cell_values(picture, rows, columns):
    """The viridis value (0..1) at the centre of every cell of a PNG heatmap, found by
    matching each centre pixel's colour against the colormap."""
    pixels = imread(picture.path)[..., :3]
    assert pixels.shape[:2] == (picture.height, picture.width)
    palette = colormaps["viridis"](np.linspace(0, 1, 256))[:, :3]
    x0, y0, x1, y1 = picture.heatmap_box
    values = np.zeros((rows, columns))
    for r in range(rows):
        for c in range(columns):
            x = int(x0 + (c + 0.5) * (x1 - x0) / columns)
            y = int(y0 + (r + 0.5) * (y1 - y0) / rows)
            distance = np.abs(palette - pixels[y, x]).sum(axis=1)
            assert distance.min() < 0.02, (r, c)  # a heatmap colour, not a label or frame
            values[r, c] = distance.argmin() / 255
    return values


def test_png_heatmap_shows_the_attention(translator, tmp_path):
    source = ["s3", "s1", "s4", "s1", "s5", "s9"]
    result = translator.translate_batch([source], beam_size=3, max_decoding_length=8,
                                        return_attention=True)[0]
    attention = result.attention[0]
    picture = rnnsearch.plot_attention(result, translator.attention_labels(source),
                                       str(tmp_path / "a.png"))
    rows, columns = attention.shape
    assert (rows, columns) == (len(result.hypotheses[0]), len(source))
    # the size grows with the sentence: about a third of an inch per token each way
    assert picture.width >= 32 * columns and picture.height >= 32 * rows
    values = _cell_values(picture, rows, columns)
    # matplotlib's colormap has 256 colours: a value v shows as colour floor(256 v)
    np.testing.assert_allclose(values, attention, atol=2 / 255)
    for row, weights in zip(values, attention):
        top = np.sort(weights)[-2:]
        if top[1] - top[0] > 2 / 255:  # a clear peak: the brightest cell is the peak
            assert row.argmax() == weights.argmax()


def test_brightest_cell_of_each_row_is_where_the_attention_peaks(tmp_path):
    rng = np.random.default_rng(0)
    rows, columns = 7, 11
    logits = rng.normal(size=(rows, columns)) * 3
    attention = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    result = rnnsearch.TranslationResult([[f"t{i}" for i in range(rows)]],
                                         attention=[attention.astype(np.float32)])
    picture = rnnsearch.plot_attention(result, [f"s{j}" for j in range(columns)],
                                       str(tmp_path / "peaks.png"))
    values = _cell_values(picture, rows, columns)
    np.testing.assert_array_equal(values.argmax(axis=1), attention.argmax(axis=1))
    np.testing.assert_allclose(values, attention, atol=2 / 255)


def test_svg_has_the_token_labels(translator, tmp_path):
    source = ["s2", "s7", "s8"]
    result = translator.translate_batch([source], beam_size=2, max_decoding_length=6,
                                        return_attention=True)[0]
    path = str(tmp_path / "a.svg")
    rnnsearch.plot_attention(result, translator.attention_labels(source), path,
                             title="my sentence")
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", open(path, encoding="utf-8").read())
    for token in source + result.hypotheses[0] + ["source", "target", "my sentence"]:
        assert token in texts


def test_bad_arguments(translator, tmp_path):
    result = translator.translate_batch([["s1"]], max_decoding_length=3)[0]
    with pytest.raises(ValueError, match="return_attention"):
        rnnsearch.plot_attention(result, ["s1"], str(tmp_path / "a.png"))
    result = translator.translate_batch([["s1"]], max_decoding_length=3,
                                        return_attention=True)[0]
    with pytest.raises(ValueError, match="does not match"):
        rnnsearch.plot_attention(result, ["s1", "extra"], str(tmp_path / "a.png"))
    with pytest.raises(ValueError, match=".png or .svg"):
        rnnsearch.plot_attention(result, ["s1"], str(tmp_path / "a.jpg"))
    assert os.listdir(tmp_path) == []


def test_cli_plot_attention(small_model_dir, tmp_path, monkeypatch, capsys):
    source = tmp_path / "in.txt"
    source.write_text("s1 s2 s3\n\ns4 s5\n", encoding="utf-8")
    out = tmp_path / "plots"
    assert cli_main(["translate", "-m", small_model_dir, "-i", str(source), "-o",
                     str(tmp_path / "out.txt"), "--plot-attention", str(out), "--plot-svg",
                     "--max-length", "5", "-q"]) == 0
    assert sorted(os.listdir(out)) == ["1.png", "1.svg", "3.png", "3.svg"]
    # without matplotlib: a clear message, before any work
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    capsys.readouterr()
    assert cli_main(["translate", "-m", small_model_dir, "-i", str(source), "-o",
                     str(tmp_path / "out2.txt"), "--plot-attention", str(tmp_path / "p2"),
                     "-q"]) == 1
    assert 'pip install "rnnsearch[plot]"' in capsys.readouterr().err
    assert not (tmp_path / "out2.txt").exists()
