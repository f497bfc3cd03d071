"""Attention heatmaps: one picture per sentence, the target tokens down the side, the source
tokens along the bottom, each cell the weight the decoder gave that source token when it
produced that target token (0 dark, 1 bright: matplotlib's viridis).

Needs matplotlib (pip install "rnnsearch[plot]"), imported only here and only when a
picture is drawn. Drawn with matplotlib's object API (no pyplot state), so threads may
draw at once; files are written completely or not at all.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .safetensors_io import atomic_write

FORMATS = ("png", "svg")
DPI = 100
CELL_INCHES = 0.32


@dataclass
class AttentionPicture:
    path: str
    width: int                                  # pixels (PNG) or points at DPI (SVG)
    height: int
    heatmap_box: tuple[float, float, float, float]  # x0, y0, x1, y1 from the top left, pixels


def require_matplotlib():
    """The matplotlib modules plotting needs; ImportError saying how to install them."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("attention plots need matplotlib: pip install \"rnnsearch[plot]\"") \
            from e
    return matplotlib, Figure, FigureCanvasAgg


def plot_attention(result, source_tokens: list[str], path: str, hypothesis: int = 0,
                   title: str | None = None) -> AttentionPicture:
    """Draw hypothesis `hypothesis` of a TranslationResult (translated with
    return_attention=True) against `source_tokens`, one label per attention column
    (Translator.attention_labels gives them, BOS/EOS/padding included), into `path`
    (.png or .svg)."""
    if not result.attention:
        raise ValueError("the result has no attention: translate with return_attention=True")
    if not 0 <= hypothesis < len(result.hypotheses):
        raise ValueError(f"hypothesis {hypothesis} out of range "
                         f"({len(result.hypotheses)} hypotheses)")
    return draw_heatmap(np.asarray(result.attention[hypothesis], np.float32),
                        list(source_tokens), list(result.hypotheses[hypothesis]), path, title)


def draw_heatmap(weights: np.ndarray, source_tokens: list[str], target_tokens: list[str],
                 path: str, title: str | None = None) -> AttentionPicture:
    """weights [len(target_tokens), len(source_tokens)] into a PNG or SVG at `path`."""
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if extension not in FORMATS:
        raise ValueError(f"{path}: the picture's name must end in .png or .svg")
    if weights.ndim != 2 or weights.shape != (len(target_tokens), len(source_tokens)):
        raise ValueError(f"attention of shape {list(weights.shape)} does not match "
                         f"{len(target_tokens)} target and {len(source_tokens)} source tokens")
    matplotlib, Figure, FigureCanvasAgg = require_matplotlib()
    rows, columns = weights.shape
    longest = max([len(t) for t in source_tokens + target_tokens] + [1])
    margin = 0.9 + 0.07 * min(longest, 30)     # room for the tick labels
    size = (max(3.0, CELL_INCHES * columns + margin + 1.2),
            max(2.0, CELL_INCHES * rows + margin + (0.4 if title else 0.1)))
    # SVG text stays text (searchable, and testable)
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        figure = Figure(figsize=size, dpi=DPI)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        shown = np.nan_to_num(weights, nan=0.0) if rows and columns else np.zeros((1, 1))
        image = axes.imshow(shown, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto",
                            interpolation="nearest")
        axes.set_xticks(range(columns), labels=source_tokens, rotation=90)
        axes.set_yticks(range(rows), labels=target_tokens)
        axes.set_xlabel("source")
        axes.set_ylabel("target")
        if title:
            axes.set_title(title)
        figure.colorbar(image, ax=axes, fraction=0.05, pad=0.02)
        figure.tight_layout()
        figure.canvas.draw()
        box = axes.get_window_extent()
        width, height = (int(round(v)) for v in figure.canvas.get_width_height())
        with atomic_write(path, "wb") as f:
            figure.savefig(f, format=extension, dpi=DPI)
    return AttentionPicture(path, width, height,
                            (box.x0, height - box.y1, box.x1, height - box.y0))


def plot_line(translator, units: list[list[str]], results: list, line_number: int,
              directory: str, svg: bool = False) -> list[AttentionPicture]:
    """`rnnsearch translate --plot-attention`: the pictures of one input line, as
    DIR/LINE.png (per-word models: DIR/LINE-WORD.png, one per word), and .svg with svg."""
    pictures = []
    for word, (unit, result) in enumerate(zip(units, results), 1):
        if not unit or not result.hypotheses:
            continue
        name = f"{line_number}" if len(units) == 1 else f"{line_number}-{word}"
        labels = translator.attention_labels(unit)
        for extension in ("png", "svg") if svg else ("png",):
            pictures.append(plot_attention(result, labels,
                                           os.path.join(directory, f"{name}.{extension}"),
                                           title=f"line {line_number}"))
    return pictures
