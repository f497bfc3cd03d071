"""The PyTorch reference (rnnsearch.reference) is self-consistent and follows
docs/model-format.md: a NumPy transcription of the spec's equations, padding, teacher
forcing vs stepping, the beam search rules, penalties, and export/load."""
import copy
import math
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnnsearch.model_spec import check_tensors, normalize_config  # noqa: E402
from rnnsearch.random_model import vocabularies  # noqa: E402
from rnnsearch.reference import (GRUCellResetBefore, Seq2Seq, export_model_dir,  # noqa: E402
                                 load_model_dir, load_tensors, model_tensors, random_model,
                                 spec_parameters, translate, translate_batch)
from rnnsearch.reference.search import (best_candidates,  # noqa: E402
                                        length_penalty_divisor)

V_SRC, V_TGT, BOS, EOS = 20, 15, 2, 3

BASE = {
    "format": "rnnsearch-model", "format_version": 1,
    "encoder": {"embedding_size": 6, "cell": "gru", "hidden_size": 8, "bidirectional": True},
    "bridge": {"type": "dense"},
    "attention": {"score": "additive", "size": 9},
    "decoder": {"type": "bahdanau", "embedding_size": 5, "cell": "lstm", "hidden_size": 16,
                "readout": "maxout", "readout_size": 10},
}


def config_with(**sections):
    """BASE with some keys of some sections replaced; a section given as None is null."""
    config = copy.deepcopy(BASE)
    for section, changes in sections.items():
        if changes is None or section == "bridge":
            config[section] = changes
        else:
            config[section].update(changes)
    return config


TWO_LAYERS = {"num_layers": 2, "residual": True}
# Every option of format v1 appears at least once.
CONFIGS = {
    "bahdanau-maxout-gru-lstm-dense": BASE,
    "encoder-lstm": config_with(encoder={"cell": "lstm"}),
    "encoder-gru-reset-before": config_with(encoder={"gru_reset_after": False}),
    "encoder-rnn-tanh": config_with(encoder={"cell": "rnn_tanh"}),
    "encoder-rnn-relu-unidirectional": config_with(
        encoder={"cell": "rnn_relu", "bidirectional": False}, decoder={"hidden_size": 8}),
    "two-layers-residual-last-bridged": config_with(
        encoder=dict(TWO_LAYERS, cell="lstm"), decoder=TWO_LAYERS,
        bridge={"type": "last", "lstm_cell": "bridged"}),
    "merge-sum-last-top-layer": config_with(
        encoder=dict(TWO_LAYERS, merge="sum"), decoder={"hidden_size": 8},
        bridge={"type": "last", "from": "top_layer", "lstm_cell": "bridged"}),
    "dense-top-layer-relu-bridged-gru-encoder": config_with(
        encoder={"num_layers": 2}, bridge={"type": "dense", "from": "top_layer",
                                           "activation": "relu", "lstm_cell": "bridged"}),
    "dense-matching-copy-hidden": config_with(
        encoder=dict(TWO_LAYERS, cell="lstm"), decoder={"num_layers": 2},
        bridge={"type": "dense", "activation": "identity", "lstm_cell": "copy_hidden"}),
    "dense-all-layers-bridged-3-decoder-layers": config_with(
        encoder=dict(TWO_LAYERS, cell="lstm"), decoder={"num_layers": 3},
        bridge={"type": "dense", "from": "all_layers", "activation": "relu",
                "lstm_cell": "bridged"}),
    "mean-bridged": config_with(bridge={"type": "mean", "lstm_cell": "bridged"}),
    "zeros-bridge-copy-hidden": config_with(bridge={"type": "zeros", "lstm_cell": "copy_hidden"}),
    "readout-none": config_with(decoder={"readout": "none", "readout_size": None}),
    "readout-linear-state-only": config_with(decoder={"readout": "linear",
                                                      "readout_inputs": ["state"]}),
    "readout-tanh-embedding-context": config_with(
        decoder={"readout": "tanh", "readout_inputs": ["embedding", "context"]}),
    "additive-no-query-projection": config_with(attention={"query_projection": False,
                                                           "size": 16}),
    "additive-no-key-projection": config_with(attention={"key_projection": False,
                                                         "size": 16}),
    "additive-no-projections": config_with(attention={"query_projection": False,
                                                      "key_projection": False, "size": None}),
    "luong-general-input-feeding": config_with(
        attention={"score": "general", "size": None},
        decoder={"type": "luong", "input_feeding": True, "attentional_size": 7,
                 "cell": "gru", "gru_reset_after": False, **TWO_LAYERS},
        encoder=TWO_LAYERS),
    "luong-identity-attentional-input-feeding": config_with(
        attention={"score": "general", "size": None},
        decoder={"type": "luong", "input_feeding": True, "attentional_activation": "identity"}),
    "luong-dot-no-attentional-layer": config_with(
        attention={"score": "dot", "size": None},
        decoder={"type": "luong", "attentional_layer": False, "cell": "rnn_tanh"}),
    "luong-scaled-dot": config_with(attention={"score": "scaled_dot", "size": None},
                                    decoder={"type": "luong", "cell": "rnn_relu"}),
    "decoder-none": config_with(attention=None, decoder={"type": "none", "readout": "none",
                                                         "readout_size": None}),
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These models are tiny: extra threads only add synchronisation (and on a busy
    machine, waiting)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models(one_thread):
    return {name: random_model(config, V_SRC, V_TGT, seed=i)
            for i, (name, config) in enumerate(CONFIGS.items())}


def random_batch(generator, lengths, vocab=V_SRC, pad=0):
    src = torch.full((len(lengths), max(lengths)), pad, dtype=torch.long)
    for b, n in enumerate(lengths):
        src[b, :n] = torch.randint(4, vocab, (n,), generator=generator)
    return src, torch.tensor(lengths)


# ------------------------------------------------------- the spec's equations in NumPy

def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_cell(cell, reset_after, w, x, h, c):
    """docs/model-format.md "Cells"; w holds weight_ih, weight_hh, bias_ih, bias_hh."""
    xg = w["weight_ih"] @ x + w["bias_ih"]
    if cell == "lstm":
        i, f, g, o = np.split(xg + w["weight_hh"] @ h + w["bias_hh"], 4)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c), c
    if cell == "gru":
        x_r, x_z, x_n = np.split(xg, 3)
        w_r, w_z, w_n = np.split(w["weight_hh"], 3)
        b_r, b_z, b_n = np.split(w["bias_hh"], 3)
        r = _sigmoid(x_r + w_r @ h + b_r)
        z = _sigmoid(x_z + w_z @ h + b_z)
        n = np.tanh(x_n + r * (w_n @ h + b_n)) if reset_after else \
            np.tanh(x_n + w_n @ (r * h) + b_n)
        return (1 - z) * n + z * h, c
    pre = xg + w["weight_hh"] @ h + w["bias_hh"]
    return (np.tanh(pre) if cell == "rnn_tanh" else np.maximum(pre, 0)), c


def _rnn_weights(t, prefix):
    return {k: t[f"{prefix}.{k}"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


def np_encode(t, config, ids):
    """One unpadded sentence -> memory [S, D_m], per layer ([h_fwd, h_bwd], [c_fwd, c_bwd])."""
    enc = config["encoder"]
    H = enc["hidden_size"]
    x = [t["encoder.embedding.weight"][i] for i in ids]
    finals = []
    for layer in range(enc["num_layers"]):
        outputs, hs, cs = [], [], []
        for direction in ("forward", "backward")[:2 if enc["bidirectional"] else 1]:
            w = _rnn_weights(t, f"encoder.layers.{layer}.{direction}")
            h, c, out = np.zeros(H, np.float32), np.zeros(H, np.float32), []
            for xi in (x if direction == "forward" else x[::-1]):
                h, c = np_cell(enc["cell"], enc["gru_reset_after"], w, xi, h, c)
                out.append(h)
            outputs.append(out if direction == "forward" else out[::-1])
            hs.append(h)
            cs.append(c)
        merged = [np.concatenate(p) if enc["merge"] == "concat" else sum(p)
                  for p in zip(*outputs)]
        if enc["residual"] and layer > 0:
            merged = [m + xi for m, xi in zip(merged, x)]
        x = merged
        finals.append((hs, cs))
    return np.array(x), finals


def np_bridge(t, config, memory, finals):
    enc, bridge, dec = config["encoder"], config["bridge"], config["decoder"]
    act = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0),
           "identity": lambda v: v}[bridge["activation"]]
    merge = (lambda s: np.concatenate(s)) if enc["merge"] == "concat" else sum
    dense = lambda name, v: act(t[name + ".weight"] @ v + t[name + ".bias"])  # noqa: E731
    hidden, cell = [], []
    for layer in range(dec["num_layers"]):
        zeros = np.zeros(dec["hidden_size"], np.float32)
        h = c = zeros
        source = enc["num_layers"] - 1 if bridge["from"] == "top_layer" else layer
        prefix = f"bridge.layers.{layer}"
        if bridge["type"] == "last":
            h, c = merge(finals[source][0]), merge(finals[source][1])
        elif bridge["type"] == "dense":
            # all_layers: every encoder layer's [fwd; bwd] in layer order
            read = finals if bridge["from"] == "all_layers" else [finals[source]]
            h = dense(prefix + ".hidden", np.concatenate([s for hs, _ in read for s in hs]))
            if prefix + ".cell.weight" in t:
                c = dense(prefix + ".cell", np.concatenate([s for _, cs in read for s in cs]))
        elif bridge["type"] == "mean":
            h = dense(prefix + ".hidden", memory.mean(axis=0))
            if prefix + ".cell.weight" in t:
                c = dense(prefix + ".cell", memory.mean(axis=0))
        hidden.append(h)
        cell.append({"bridged": c, "copy_hidden": h}.get(bridge["lstm_cell"], zeros))
    return hidden, cell


def np_attend(t, config, q, memory):
    att = config["attention"]
    if att["score"] == "additive":
        keys = memory @ t["attention.key.weight"].T + t["attention.key.bias"] \
            if "attention.key.weight" in t else memory
        if "attention.query.weight" in t:
            q = t["attention.query.weight"] @ q + t["attention.query.bias"]
        e = np.tanh(q[None, :] + keys) @ t["attention.v"]
    elif att["score"] == "general":
        e = (memory @ t["attention.key.weight"].T + t["attention.key.bias"]) @ q
    else:
        e = memory @ q * (t["attention.scale"][0] if att["score"] == "dot"
                          else 1 / math.sqrt(len(q)))
    a = np.exp(e - e.max())
    a /= a.sum()
    return a @ memory, a


def np_decode(t, config, ids, targets):
    """Teacher-forced log-probabilities [T, V] and attention rows, step by step."""
    dec = config["decoder"]
    memory, finals = np_encode(t, config, ids)
    hidden, cell = np_bridge(t, config, memory, finals)
    o = hidden[-1]
    feed = np.zeros(dec["attentional_size"] or dec["hidden_size"], np.float32)
    log_probs, rows = [], []
    for y in targets:
        emb = t["decoder.embedding.weight"][y]
        x = emb
        if dec["type"] == "bahdanau":
            context, a = np_attend(t, config, o, memory)
            x = np.concatenate([emb, context])
        elif dec["type"] == "luong" and dec["input_feeding"]:
            x = np.concatenate([emb, feed])
        for layer in range(dec["num_layers"]):
            w = _rnn_weights(t, f"decoder.layers.{layer}")
            hidden[layer], cell[layer] = np_cell(dec["cell"], dec["gru_reset_after"], w, x,
                                                 hidden[layer], cell[layer])
            x = hidden[layer] + x if dec["residual"] and layer > 0 else hidden[layer]
        o = x
        if dec["type"] == "bahdanau":
            parts = {"state": o, "context": context, "embedding": emb}
            final = np.concatenate([parts[k] for k in ("state", "context", "embedding")
                                    if k in dec["readout_inputs"]])
            if dec["readout"] != "none":
                final = t["decoder.readout.weight"] @ final + t["decoder.readout.bias"]
                if dec["readout"] == "tanh":
                    final = np.tanh(final)
                elif dec["readout"] == "maxout":
                    final = np.maximum(final[0::2], final[1::2])
        elif dec["type"] == "luong":
            context, a = np_attend(t, config, o, memory)
            final = np.concatenate([context, o])
            if dec["attentional_layer"]:
                act = np.tanh if dec["attentional_activation"] == "tanh" else (lambda v: v)
                final = feed = act(t["decoder.attentional.weight"] @ final +
                                   t["decoder.attentional.bias"])
        else:
            final, a = o, None
        logits = (t["decoder.output.weight"] @ final + t["decoder.output.bias"]).astype(
            np.float64)
        log_probs.append(logits - logits.max() - np.log(np.exp(logits - logits.max()).sum()))
        rows.append(a)
    return np.array(log_probs), rows


@pytest.mark.parametrize("name", CONFIGS)
def test_model_follows_the_spec_equations(models, name):
    """Teacher-forced stepping of the module equals the NumPy transcription of the spec,
    which reads the weights by their tensor names (so this checks the name mapping too)."""
    model = models[name]
    config = normalize_config(CONFIGS[name])
    tensors = model_tensors(model)
    check_tensors(config, tensors, V_SRC, V_TGT)  # every listed tensor, right shapes
    ids, targets = [5, 9, 4, 17, 11], [BOS, 7, 12, 4]
    expected, expected_rows = np_decode(tensors, config, ids, targets)
    with torch.no_grad():
        memory, state, mask = model.encode(torch.tensor([ids]), torch.tensor([len(ids)]))
        for step, y in enumerate(targets):
            log_probs, state, weights = model.decode_step(torch.tensor([y]), state, memory,
                                                          mask)
            np.testing.assert_allclose(log_probs[0].numpy(), expected[step], atol=2e-5)
            if weights is None:
                assert expected_rows[step] is None
            else:
                np.testing.assert_allclose(weights[0].numpy(), expected_rows[step], atol=1e-6)


def test_every_parameter_has_a_tensor_name(models):
    for model in models.values():
        named = {id(p) for p in spec_parameters(model).values()}
        assert named == {id(p) for p in model.parameters()}


def test_gru_reset_before_cell_matches_numpy():
    torch.manual_seed(0)
    cell = GRUCellResetBefore(5, 4)
    x, h = torch.randn(3, 5), torch.randn(3, 4)
    w = {k: v.detach().numpy() for k, v in cell.named_parameters()}
    with torch.no_grad():
        got = cell(x, h).numpy()
    for b in range(3):
        xb, hb = x[b].numpy(), h[b].numpy()
        r = _sigmoid(w["weight_ih"][:4] @ xb + w["bias_ih"][:4] + w["weight_hh"][:4] @ hb +
                     w["bias_hh"][:4])
        z = _sigmoid(w["weight_ih"][4:8] @ xb + w["bias_ih"][4:8] + w["weight_hh"][4:8] @ hb +
                     w["bias_hh"][4:8])
        n = np.tanh(w["weight_ih"][8:] @ xb + w["bias_ih"][8:] +
                    w["weight_hh"][8:] @ (r * hb) + w["bias_hh"][8:])
        np.testing.assert_allclose(got[b], (1 - z) * n + z * hb, atol=1e-6)
    # and it differs from torch's reset-after GRU with the same weights
    torch_gru = torch.nn.GRUCell(5, 4)
    torch_gru.load_state_dict(cell.state_dict())
    with torch.no_grad():
        assert not torch.allclose(torch_gru(x, h), cell(x, h))


# ------------------------------------------------------------- padding and batching

@pytest.mark.parametrize("name", CONFIGS)
def test_padded_batch_equals_single_sentences(models, name):
    """Encoding and teacher forcing a padded batch give each sentence's own results; the
    padding ids do not matter and get no attention."""
    model = models[name]
    generator = torch.Generator().manual_seed(1)
    lengths = [3, 7, 1, 5]
    src, src_lengths = random_batch(generator, lengths)
    tgt = torch.randint(4, V_TGT, (len(lengths), 4), generator=generator)
    tgt[:, 0] = BOS
    with torch.no_grad():
        memory, state, mask = model.encode(src, src_lengths)
        batch_log_probs = model(src, src_lengths, tgt)
        other_padding = model(src.masked_fill(~mask, 13), src_lengths, tgt)
        np.testing.assert_array_equal(batch_log_probs.numpy(), other_padding.numpy())
        _, _, weights = model.decode_step(tgt[:, 0], state, memory, mask)
        if weights is not None:
            assert float(weights.masked_select(~mask).abs().sum()) == 0.0
        for b, n in enumerate(lengths):
            one_memory, one_state, _ = model.encode(src[b:b + 1, :n], src_lengths[b:b + 1])
            torch.testing.assert_close(memory[b:b + 1, :n], one_memory, atol=1e-6, rtol=0)
            for h_batch, h_one in zip(state.hidden, one_state.hidden):
                torch.testing.assert_close(h_batch[b:b + 1], h_one, atol=1e-6, rtol=0)
            one_log_probs = model(src[b:b + 1, :n], src_lengths[b:b + 1], tgt[b:b + 1])
            torch.testing.assert_close(batch_log_probs[b:b + 1], one_log_probs, atol=1e-5,
                                       rtol=0)


@pytest.mark.parametrize("name", ["encoder-lstm", "luong-general-input-feeding",
                                  "decoder-none"])
def test_forward_equals_decode_steps(models, name):
    model = models[name]
    generator = torch.Generator().manual_seed(2)
    src, lengths = random_batch(generator, [4, 6, 2])
    tgt = torch.randint(0, V_TGT, (3, 5), generator=generator)
    with torch.no_grad():
        forward = model(src, lengths, tgt)
        memory, state, mask = model.encode(src, lengths)
        for t in range(tgt.size(1)):
            log_probs, state, _ = model.decode_step(tgt[:, t], state, memory, mask)
            torch.testing.assert_close(forward[:, t], log_probs, atol=1e-6, rtol=0)


def test_forward_trains():
    """forward is differentiable end to end: a few steps on one batch lower the loss."""
    torch.manual_seed(0)
    model = Seq2Seq(CONFIGS["two-layers-residual-last-bridged"], V_SRC, V_TGT, dropout=0.1)
    generator = torch.Generator().manual_seed(3)
    src, lengths = random_batch(generator, [5, 3, 4, 6])
    tgt = torch.randint(4, V_TGT, (4, 6), generator=generator)
    tgt[:, 0] = BOS
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(20):
        log_probs = model(src, lengths, tgt[:, :-1])
        loss = torch.nn.functional.nll_loss(log_probs.reshape(-1, V_TGT), tgt[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ------------------------------------------------------------------------- search

def greedy(model, ids, max_length):
    """Argmax decoding written independently of the beam search."""
    with torch.no_grad():
        memory, state, mask = model.encode(torch.tensor([ids]), torch.tensor([len(ids)]))
        tokens, total, y = [], 0.0, BOS
        for _ in range(max_length):
            log_probs, state, _ = model.decode_step(torch.tensor([y]), state, memory, mask)
            y = int(log_probs[0].argmax())
            total += float(log_probs[0, y])
            if y == EOS:
                break
            tokens.append(y)
        return tokens, total


@pytest.mark.parametrize("name", ["bahdanau-maxout-gru-lstm-dense",
                                  "luong-dot-no-attentional-layer", "decoder-none"])
def test_beam_one_is_greedy(models, name):
    model = models[name]
    for ids in ([5, 6, 7], [19, 4, 4, 8, 10, 12], [9]):
        (hyp,) = translate(model, ids, BOS, EOS, beam_size=1, max_decoding_length=12)
        tokens, total = greedy(model, ids, 12)
        assert hyp.tokens == tokens
        assert hyp.score == pytest.approx(total, abs=1e-4)
        assert hyp.attention.shape == (len(tokens), len(ids))


def rescore(model, ids, tokens, finished_by_eos):
    """Total log-probability and attention rows of a hypothesis (EOS step included)."""
    steps = [BOS] + tokens
    with torch.no_grad():
        memory, state, mask = model.encode(torch.tensor([ids]), torch.tensor([len(ids)]))
        total, rows = 0.0, []
        for y, nxt in zip(steps, tokens + [EOS] if finished_by_eos else tokens):
            log_probs, state, weights = model.decode_step(torch.tensor([y]), state, memory,
                                                          mask)
            total += float(log_probs[0, nxt])
            rows.append(weights[0].numpy())
    return total, np.array(rows)


@pytest.mark.parametrize("alpha,beta,normalize", [(0.0, 0.0, False), (0.6, 0.0, False),
                                                  (1.0, 0.3, False), (0.0, 0.2, True)])
def test_nbest_sorted_distinct_and_scored_by_the_formulas(models, alpha, beta, normalize):
    model = models["bahdanau-maxout-gru-lstm-dense"]
    ids, max_length = [4, 11, 7, 16, 9], 8
    hyps = translate(model, ids, BOS, EOS, beam_size=5, num_hypotheses=5,
                     max_decoding_length=max_length, length_penalty=alpha,
                     coverage_penalty=beta, normalize_scores=normalize)
    assert len(hyps) == 5
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    assert len({tuple(h.tokens) for h in hyps}) == 5
    for h in hyps:
        by_eos = len(h.tokens) < max_length  # otherwise a forced finish at the last step
        total, rows = rescore(model, ids, h.tokens, by_eos)
        length = len(h.tokens) + 1 if by_eos else len(h.tokens)
        lp = length if normalize else ((5 + length) / 6) ** alpha
        cp = beta * np.log(np.minimum(rows.sum(axis=0), 1.0)).sum()
        assert h.score == pytest.approx(total / lp + cp, abs=1e-4)
        np.testing.assert_allclose(h.attention, rows[:len(h.tokens)], atol=1e-6)


def test_best_candidates_breaks_ties_by_flat_index():
    totals = np.array([-1, -2, -1, -np.inf, -1, -0.5, -2], np.float32)
    assert best_candidates(totals, 4).tolist() == [5, 0, 2, 4]
    assert best_candidates(totals, 6).tolist() == [5, 0, 2, 4, 1, 6]
    assert best_candidates(totals, 10).tolist() == [5, 0, 2, 4, 1, 6, 3]
    generator = np.random.default_rng(0)
    for _ in range(50):  # equal to a full stable sort, with many ties
        totals = generator.integers(-5, 0, 40).astype(np.float32)
        count = int(generator.integers(1, 45))
        full = np.argsort(-totals, kind="stable")[:count]
        assert best_candidates(totals, count).tolist() == full.tolist()


def test_length_penalty_divisor():
    assert length_penalty_divisor(7, 0.0, False) == 1.0
    assert length_penalty_divisor(7, 0.6, False) == pytest.approx(2.0 ** 0.6)
    assert length_penalty_divisor(7, 0.6, True) == 7.0


def uniform_model():
    """Every step gives every token the same probability: all candidates tie."""
    model = random_model(BASE, V_SRC, 10, seed=0)
    with torch.no_grad():
        model.decoder.output.weight.zero_()
        model.decoder.output.bias.zero_()
    return model


def test_ties_go_to_the_smaller_flat_index_and_forced_finish_keeps_the_token():
    # EOS = 3 ranks 4th (rank 3 >= K) at every step, so nothing finishes before the
    # last step, where the two best candidates finish and keep their token
    hyps = translate(uniform_model(), [5, 6], BOS, EOS, beam_size=2, num_hypotheses=2,
                     max_decoding_length=4)
    assert [h.tokens for h in hyps] == [[0, 0, 0, 0], [0, 0, 0, 1]]
    assert hyps[0].score == hyps[1].score == pytest.approx(4 * -math.log(10), abs=1e-5)


def test_eos_ranked_below_k_finishes_and_min_length_blocks_it():
    model = uniform_model()
    # with eos = 1: rank 1 < K = 2 finishes an empty hypothesis at t = 0 and again (as
    # [0]) at t = 1, which makes K finished hypotheses
    hyps = translate(model, [5, 6], BOS, 1, beam_size=2, num_hypotheses=2,
                     max_decoding_length=10)
    assert [h.tokens for h in hyps] == [[], [0]]
    assert [h.attention.shape for h in hyps] == [(0, 2), (1, 2)]
    hyps = translate(model, [5, 6], BOS, 1, beam_size=2, num_hypotheses=2,
                     min_decoding_length=3, max_decoding_length=10)
    assert [h.tokens for h in hyps] == [[0, 0, 0], [0, 0, 0, 0]]


def test_empty_source_and_batches():
    model = uniform_model()
    (hyp,) = translate(model, [], BOS, EOS, beam_size=3)
    assert hyp.tokens == [] and hyp.score == 0.0 and hyp.attention.size == 0
    sources = [[5, 6, 7], [], [8]]
    batch = translate_batch(model, sources, BOS, EOS, beam_size=2, num_hypotheses=2,
                            max_decoding_length=5)
    for src, result in zip(sources, batch):
        single = translate(model, src, BOS, EOS, beam_size=2, num_hypotheses=2,
                           max_decoding_length=5)
        assert [(h.tokens, h.score) for h in result] == [(h.tokens, h.score) for h in single]


def test_random_model_is_peaked_but_not_certain(models):
    generator = torch.Generator().manual_seed(4)
    src, lengths = random_batch(generator, [6, 3, 5, 4, 7, 2])
    tgt = torch.randint(0, V_TGT, (6, 5), generator=generator)
    with torch.no_grad():
        top = models["encoder-lstm"](src, lengths, tgt).exp().amax(dim=-1)
    assert 0.4 < float(top.median()) < 0.95


# -------------------------------------------------------------------- export / load

def test_export_and_load_roundtrip(models, tmp_path):
    model = models["luong-general-input-feeding"]
    source_vocab, target_vocab = vocabularies(V_SRC, V_TGT)
    config = copy.deepcopy(CONFIGS["luong-general-input-feeding"])
    config["source"] = {"add_eos": True}
    export_model_dir(model, str(tmp_path / "m"), source_vocab, target_vocab, config)
    loaded, bos, eos = load_model_dir(str(tmp_path / "m"))
    assert (bos, eos) == (target_vocab.index("<s>"), target_vocab.index("</s>"))
    assert loaded.config["source"]["add_eos"]
    for name, value in model_tensors(model).items():
        np.testing.assert_array_equal(model_tensors(loaded)[name], value)
    with pytest.raises(ValueError):  # another architecture than the model's
        export_model_dir(model, str(tmp_path / "x"), source_vocab, target_vocab, BASE)


def test_absent_optional_tensors_take_their_defaults(models):
    tensors = model_tensors(models["additive-no-projections"])
    optional = [n for n in tensors if n.endswith(("bias", "bias_ih", "bias_hh"))] + \
        ["attention.v"]
    for name in optional:
        del tensors[name]
    model = load_tensors(Seq2Seq(CONFIGS["additive-no-projections"], V_SRC, V_TGT), tensors)
    loaded = model_tensors(model)
    assert all(not loaded[n].any() for n in optional if n != "attention.v")
    assert (loaded["attention.v"] == 1).all()


def test_rnnsearch_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import rnnsearch, rnnsearch.model_dir, rnnsearch.random_model\n"
            "try:\n    import rnnsearch.reference\nexcept ImportError: print('needs torch')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "needs torch"
