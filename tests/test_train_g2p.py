"""tools/train_g2p.py's fast teacher-forced forwards compute exactly the reference
Seq2Seq.forward (the model trained is the model exported and decoded)."""
import os
import sys

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
train_g2p = pytest.importorskip("train_g2p")

from rnnsearch.reference import Seq2Seq  # noqa: E402

BASE = {
    "format": "rnnsearch-model", "format_version": 1,
    "encoder": {"embedding_size": 8, "cell": "lstm", "hidden_size": 12, "num_layers": 2,
                "bidirectional": True},
    "bridge": {"type": "dense", "from": "top_layer", "lstm_cell": "bridged"},
}
DECODERS = {
    "luong-lstm-2layers": ({"score": "general"},
                           {"type": "luong", "embedding_size": 6, "cell": "lstm",
                            "hidden_size": 10, "num_layers": 2, "input_feeding": False,
                            "attentional_layer": True}),
    "luong-gru-dot": ({"score": "dot"},
                      {"type": "luong", "embedding_size": 6, "cell": "gru", "hidden_size": 24,
                       "num_layers": 1, "input_feeding": False, "attentional_layer": True}),
    "luong-additive": ({"score": "additive", "size": 7},
                       {"type": "luong", "embedding_size": 6, "cell": "lstm",
                        "hidden_size": 10, "num_layers": 1, "input_feeding": False,
                        "attentional_layer": True}),
    "bahdanau-maxout": ({"score": "additive", "size": 9},
                        {"type": "bahdanau", "embedding_size": 6, "cell": "lstm",
                         "hidden_size": 10, "readout": "maxout", "readout_size": 8}),
}


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_fast_forward_equals_reference(name):
    attention, decoder = DECODERS[name]
    config = {**BASE, "attention": attention, "decoder": decoder}
    torch.manual_seed(3)
    fast = train_g2p.TrainSeq2Seq(config, 11, 13).eval()
    reference = Seq2Seq(config, 11, 13).eval()
    reference.load_state_dict(fast.state_dict())
    lengths = torch.tensor([5, 1, 3, 5])
    src = torch.randint(0, 11, (4, 5))
    tgt_in = torch.randint(0, 13, (4, 6))
    with torch.no_grad():
        got = fast(src, lengths, tgt_in)
        want = reference(src, lengths, tgt_in)
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
