"""Unknown-word replacement from the attention (Luong et al. 2015), as OpenNMT-py's
`onmt_translate -replace_unk [-phrase_table FILE]` does it in its 2.x releases
(onmt/translate/translation.py, `_build_target_tokens`):

- every output token equal to the UNK token is replaced by the source token that token's
  attention row weighs most (the first such position on ties), each hypothesis of an
  n-best list with its own attention;
- with a phrase table, when that source token is a key of the table, its entry replaces it
  instead. The table has one `source|||target` pair per line, nothing stripped but the
  newline, later lines overriding earlier ones (OpenNMT-py builds a dict the same way).

The attention is the decoder's attention over the source positions (OpenNMT-py's "std"
attention), restricted here to the tokens the caller gave: the BOS/EOS/padding a model adds
are never chosen.

OpenNMT-py 3.x replaces with the source *vocabulary* token instead of the source text
(so an unknown source word comes back as <unk>), and its beam search crashes with
-replace_unk on RNN models; 2.x's behaviour is the one reproduced (tests compare with
OpenNMT-py 2.3.0's own output).
"""
from __future__ import annotations

import numpy as np

from .errors import ModelError
from .safe_files import read_text

SEPARATOR = "|||"
MAX_TABLE_BYTES = 1024 * 1024 * 1024


def load_phrase_table(path: str) -> dict[str, str]:
    """{source token: replacement} of a phrase table file; ValueError naming the line when
    a line is not one `source|||target` pair (OpenNMT-py fails there too)."""
    # a regular file only; line ends as Python's text mode reads them (\r\n, \r -> \n)
    text = read_text(path, "phrase table", MAX_TABLE_BYTES)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    table = {}
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        parts = line.rstrip("\n").split(SEPARATOR)
        if len(parts) != 2:
            raise ModelError(f"{path}: line {number}: expected one 'source{SEPARATOR}target' "
                             f"pair, got {line.rstrip(chr(10))!r}")
        table[parts[0]] = parts[1]
    return table


def replace_unknown(tokens: list[str], attention: np.ndarray, source_tokens: list[str],
                    unk: str, phrase_table: dict[str, str] | None = None) -> list[str]:
    """`tokens` with every `unk` replaced. attention: [len(tokens), len(source_tokens)],
    row t the weights token t was produced with, over the given source tokens."""
    if unk not in tokens or not source_tokens:
        return list(tokens)
    attention = np.asarray(attention)
    if attention.shape != (len(tokens), len(source_tokens)):
        raise ValueError(f"attention has shape {list(attention.shape)}; expected "
                         f"[{len(tokens)}, {len(source_tokens)}]")
    out = list(tokens)
    for t, token in enumerate(tokens):
        if token == unk:
            source = source_tokens[int(np.argmax(attention[t]))]
            out[t] = phrase_table.get(source, source) if phrase_table else source
    return out
