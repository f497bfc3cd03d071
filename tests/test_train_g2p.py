"""tools/train_g2p.py's fast teacher-forced forwards compute exactly the reference
Seq2Seq.forward (the model trained is the model exported and decoded)."""
import os
import sys

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
train_g2p = pytest.importorskip("train_g2p")

from rnnsearch.reference import Seq2Seq, load_model_dir  # noqa: E402

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


# --------------------------------------------------- data parallelism (--workers N)

data_parallel = pytest.importorskip("data_parallel")

LUONG = {**BASE, "attention": DECODERS["luong-lstm-2layers"][0],
         "decoder": DECODERS["luong-lstm-2layers"][1]}


def _batch(seed=5, size=7):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randint(3, 11, (int(n),), generator=g).tolist(),
             torch.randint(3, 13, (int(m),), generator=g).tolist())
            for n, m in zip(torch.randint(1, 6, (size,), generator=g),
                            torch.randint(1, 7, (size,), generator=g))]


def _gradients(model, replicas, pairs):
    """Gradients of one training step's loss, as train() computes them."""
    train_g2p.backward_batch(model, pairs, lambda p: train_g2p.make_tensors(p, 0, 1, 2),
                             replicas, label_smoothing=0.1, bf16=False)
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def _worker(rank, world, out_path):
    replicas = data_parallel.Replicas(rank, world)
    torch.manual_seed(100 + rank)          # different inits: the broadcast must fix them
    model = train_g2p.TrainSeq2Seq(LUONG, 11, 13, dropout=0.0)
    replicas.broadcast_parameters(model)
    grads = _gradients(model, replicas, _batch())
    clock = replicas.main_value(float(rank + 1))
    words = [f"w{i}" for i in range(11)]
    gathered = replicas.gather([w.upper() for w in replicas.share(words)])
    if rank == 1:                         # what a non-main rank ends up with
        torch.save({"state": model.state_dict(), "grads": grads, "clock": clock,
                    "gathered": gathered}, out_path)


def test_data_parallel_step_equals_one_process_on_the_whole_batch(tmp_path):
    """Two workers, each on its share of a batch, sum to the gradient one process gets
    on the whole batch, start from rank 0's parameters, read rank 0's clock and
    reassemble shared lists in order."""
    out = str(tmp_path / "rank1.pt")
    data_parallel.run(2, _worker, out)
    got = torch.load(out)
    torch.manual_seed(100)
    model = train_g2p.TrainSeq2Seq(LUONG, 11, 13, dropout=0.0)
    for name, value in model.state_dict().items():
        assert torch.equal(got["state"][name], value), name
    want = _gradients(model, data_parallel.Replicas(0, 1), _batch())
    for name, grad in want.items():
        assert torch.allclose(got["grads"][name], grad, atol=1e-6, rtol=1e-5), name
    assert got["clock"] == 1.0
    assert got["gathered"] == [f"W{i}" for i in range(11)]


def test_training_run_exports_the_averaged_model_it_scored(tmp_path, capsys):
    """A (one-step) run end to end: the output directory is a model directory whose
    weights are best.pt's, and with --ema those are the average's, not the live ones."""
    out = str(tmp_path / "g2p")
    train_g2p.main(["--minutes", "0.001", "--arch", "luong", "--cell", "lstm",
                    "--embedding", "8", "--hidden", "8", "--decoder-hidden", "8",
                    "--batch-size", "16", "--dev-limit", "20", "--ema", "0.9", "-o", out])
    assert "best dev greedy WER (averaged weights)" in capsys.readouterr().out
    best = torch.load(os.path.join(out + ".ckpt", "best.pt"))["model"]
    last = torch.load(os.path.join(out + ".ckpt", "last.pt"))
    exported = load_model_dir(out)[0].state_dict()
    assert exported.keys() == best.keys() == last["model"].keys()
    for name, value in exported.items():
        assert torch.equal(value, best[name]), name
        assert torch.equal(value, last["average"]["model"][name]), name
    assert any(not torch.equal(best[name], last["model"][name]) for name in best)


def test_learning_rate_schedule():
    """Constant for the first fraction, then a cosine from the peak to min_fraction of it
    (the default, constant_fraction 0, decays from the first step)."""
    lr = train_g2p.learning_rate
    assert lr(0.0, 2.0, 0.0, 0.05) == 2.0
    assert lr(0.5, 2.0, 0.0, 0.05) == pytest.approx((2.0 + 0.1) / 2)       # cos(pi/2) = 0
    assert lr(0.25, 2.0, 0.0, 0.05) == pytest.approx(0.1 + 1.9 * (1 + 2 ** -0.5) / 2)
    assert lr(1.0, 2.0, 0.0, 0.05) == pytest.approx(0.1)
    assert lr(3.0, 2.0, 0.0, 0.05) == pytest.approx(0.1)                     # past the budget
    assert lr(0.4, 2.0, 0.5, 0.05) == 2.0                                    # held
    assert lr(0.75, 2.0, 0.5, 0.05) == pytest.approx((2.0 + 0.1) / 2)      # half-way down
    values = [lr(i / 100, 2.0, 0.0, 0.05) for i in range(101)]
    assert all(a > b for a, b in zip(values, values[1:]))
