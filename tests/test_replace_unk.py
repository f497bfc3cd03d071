"""Unknown-word replacement and phrase tables (the rule of OpenNMT-py 2.x; the end-to-end
comparison with onmt_translate -replace_unk is in test_convert_opennmt.py)."""
import numpy as np
import pytest

import rnnsearch
from rnnsearch import ModelError
from rnnsearch.replace_unk import load_phrase_table, replace_unknown


def test_each_unk_takes_the_source_token_its_attention_peaks_on():
    attention = np.array([[0.1, 0.8, 0.1], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5]])
    assert replace_unknown(["<unk>", "b", "<unk>"], attention, ["x", "y", "z"], "<unk>") == \
        ["y", "b", "z"]
    # ties: the first position, as torch.max and numpy.argmax give it
    assert replace_unknown(["<unk>"], np.array([[0.5, 0.5]]), ["p", "q"], "<unk>") == ["p"]
    assert replace_unknown(["<unk>"], np.array([[0.1, 0.9]]), ["p", "q"], "<unk>",
                           {"q": "Q", "p": "P"}) == ["Q"]
    with pytest.raises(ValueError, match="shape"):
        replace_unknown(["<unk>"], np.zeros((2, 2)), ["p", "q"], "<unk>")


def test_phrase_table_is_read_as_onmt_reads_it(tmp_path):
    path = tmp_path / "table.txt"
    path.write_text("a|||A\nb ||| B\na|||AA\n", encoding="utf-8")
    # nothing stripped but the newline; later lines win
    assert load_phrase_table(str(path)) == {"a": "AA", "b ": " B"}
    path.write_text("a|||A\nbroken line\n", encoding="utf-8")
    with pytest.raises(ModelError, match="line 2"):
        load_phrase_table(str(path))
    with pytest.raises(ModelError, match="not found"):
        load_phrase_table(str(tmp_path / "missing.txt"))


def test_translator_replaces_from_its_own_attention(small_model_dir):
    translator = rnnsearch.Translator(small_model_dir)
    source = ["s3", "s1", "s7", "s2"]
    options = dict(beam_size=3, num_hypotheses=3, max_decoding_length=10)
    # make UNK likely: suppress everything but UNK, EOS and a few tokens
    ban = [t for t in translator.target_vocab.tokens
           if t not in ("<unk>", "</s>", "t1", "t2")]
    plain = translator.translate_batch([source], return_attention=True, suppress_tokens=ban,
                                       **options)[0]
    replaced = translator.translate_batch([source], replace_unk=True, suppress_tokens=ban,
                                          **options)[0]
    assert any("<unk>" in h for h in plain.hypotheses)
    for hyp, attention, new in zip(plain.hypotheses, plain.attention, replaced.hypotheses):
        assert new == [source[int(np.argmax(row))] if token == "<unk>" else token
                       for token, row in zip(hyp, attention)]


def test_phrase_table_without_replace_unk_is_an_error(small_model_dir, tmp_path):
    translator = rnnsearch.Translator(small_model_dir)
    with pytest.raises(ValueError, match="only used with replace_unk"):
        translator.translate_batch([["s1"]], phrase_table={"s1": "x"})
