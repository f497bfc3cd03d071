"""tools/weight_average.py: the shadow weights follow the formula, start from the model,
are a copy (not an alias) that does not train, and reject decays outside (0, 1)."""
import os
import sys

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools"))
from weight_average import WeightAverage  # noqa: E402


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))


def test_average_follows_the_warmed_up_decay():
    model = _model()
    average = WeightAverage(model, decay=0.9)
    start = [p.detach().clone() for p in model.parameters()]
    expected = [p.clone() for p in start]
    for n in range(30):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        d = min(0.9, (1 + n) / (10 + n))
        expected = [d * e + (1 - d) * p.detach() for e, p in zip(expected, model.parameters())]
        average.update(model)
    for got, want in zip(average.model.parameters(), expected):
        assert torch.allclose(got, want, atol=1e-6)
    # the live model is not the average: averaging copied, it did not alias
    assert not all(torch.equal(a, b) for a, b in zip(average.model.parameters(),
                                                      model.parameters()))
    assert average.updates == 30
    assert not any(p.requires_grad for p in average.model.parameters())
    assert not average.model.training


def test_first_update_mostly_keeps_the_start():
    model = _model()
    average = WeightAverage(model, decay=0.999)
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    average.update(model)
    for got, old in zip(average.model.parameters(), before):
        # d_0 = 1/10: the first step moves the average 90 % of the way
        assert torch.allclose(got, old + 0.9, atol=1e-6)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5])
def test_decay_must_be_a_fraction(decay):
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(_model(), decay)
