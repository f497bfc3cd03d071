"""The examples of README.md, docs/*.md and the model cards, run as written, so that they
cannot drift from what the code does.

Every fenced block carries a language. Per page, in a scratch directory and in order:
- ```python blocks run in one namespace (a page's blocks build on each other);
- ```bash blocks run with bash; a block whose lines start with "$ " is a transcript: each
  command runs and its output must be the lines that follow it;
- ```json / ```yaml / ```text blocks are shown, not run, unless a directive writes them.
Directives are HTML comments (invisible on GitHub) on the line before a block, or
anywhere for `needs`:
  <!-- docs-test: skip: REASON -->      the block is not run, for the reason given
  <!-- docs-test: file NAME -->         the block is the content of file NAME
  <!-- docs-test: setup: COMMAND -->    a bash command run before the block (what a reader
                                         has already: a checkpoint, an input file); $ROOT is
                                         the repository
  <!-- docs-test: needs: MODULE ... --> the page's examples need these Python modules
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")   # before keras is imported; never TensorFlow

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted((ROOT / "models").glob("*/MODEL_CARD.md"))]
RUN = {"bash", "python"}
SHOWN = {"json", "yaml", "text"}
DIRECTIVE = re.compile(r"<!--\s*docs-test:\s*(skip|file|setup|needs):?\s*(.*?)\s*-->")


@dataclass
class Block:
    line: int
    language: str
    code: str
    skip: str | None = None
    file: str | None = None
    setup: list[str] = field(default_factory=list)


def parse(page: Path) -> tuple[list[Block], list[str]]:
    """The page's fenced blocks with their directives, and the modules it needs."""
    blocks, needs, pending = [], [], {"setup": []}
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        for kind, value in DIRECTIVE.findall(lines[i]):
            if kind == "needs":
                needs += value.split()
            elif kind == "setup":
                pending["setup"].append(value)
            else:
                pending[kind] = value
        if lines[i].startswith("```"):
            start, language = i, lines[i][3:].strip()
            i += 1
            while not lines[i].startswith("```"):
                i += 1
            blocks.append(Block(start + 1, language, "\n".join(lines[start + 1:i]) + "\n",
                                pending.get("skip"), pending.get("file"), pending["setup"]))
            pending = {"setup": []}
        i += 1
    return blocks, needs


def transcript(code: str) -> list[tuple[str, str]]:
    """(command, expected output) pairs of a "$ " block; a command continues over lines
    ending in a backslash."""
    pairs, lines = [], code.splitlines()
    i = 0
    while i < len(lines):
        command = lines[i][2:]
        while command.endswith("\\"):
            i += 1
            command = command[:-1] + lines[i]
        i += 1
        output = []
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i])
            i += 1
        pairs.append((command, "\n".join(output)))
    return pairs


def bash(command: str, where: Path, env: dict) -> str:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=where, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_is_tagged_and_every_skip_says_why(page):
    for block in parse(page)[0]:
        where = f"{page.name}:{block.line}"
        assert block.language in RUN | SHOWN, \
            f"{where}: tag the block with its language ({sorted(RUN | SHOWN)})"
        assert block.skip is None or block.skip.strip(), f"{where}: a skip needs a reason"
        if block.language == "bash" and block.skip is None and block.file is None:
            assert "pip install" not in block.code, \
                f"{where}: a block that installs packages must be skipped (say why)"


@pytest.mark.skipif(os.name == "nt", reason="the examples are POSIX shell")
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples_run_as_written(page, tmp_path, monkeypatch):
    blocks, needs = parse(page)
    if not any(b.language in RUN and b.skip is None for b in blocks):
        pytest.skip("no runnable examples on this page")
    for module in needs:
        pytest.importorskip(module)
    env = dict(os.environ, ROOT=str(ROOT),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    for block in blocks:
        where = f"{page.name}:{block.line}"
        for command in block.setup:
            bash(command, tmp_path, env)
        if block.file:
            (tmp_path / block.file).write_text(block.code, encoding="utf-8")
        elif block.skip is not None or block.language not in RUN:
            continue
        elif block.language == "python":
            exec(compile(block.code, where, "exec"), namespace)   # noqa: S102
        elif block.code.startswith("$ "):
            for command, expected in transcript(block.code):
                assert bash(command, tmp_path, env).rstrip("\n") == expected, \
                    f"{where}: `{command}`"
        else:
            bash(block.code, tmp_path, env)
