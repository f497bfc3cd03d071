"""Train the small user-style PyTorch models over feature sources that the tests convert
and decode (tests/fixtures/README.md, "Feature sources"), on the synthetic tasks of
tests/feature_tasks.py, and write them to tests/fixtures/features/:

  show_attend_tell.pt      the captioning tutorial's decoder (relu attention, a gate per
                           context dimension, output from h) naming coloured shapes
  show_attend_tell_xu.pt   Xu et al.'s own choices (tanh attention, a scalar gate, the deep
                           output) on the same task
  las.pt                   Listen, Attend and Spell's pyramidal listener and a speller
                           transcribing digit-like spectral patterns
  features.json            their sizes, training steps and held-out greedy accuracy

    python tools/make_feature_fixtures.py            # about a minute on two cores

With --espnet (run it with the Python of a throwaway virtualenv that has torch==2.13.0 and
espnet==202511 installed without its dependencies; ESPnet's RNN encoders import with
torch, numpy and six):

    python -m venv /tmp/venv-espnet
    /tmp/venv-espnet/bin/pip install torch==2.13.0 numpy six packaging
    /tmp/venv-espnet/bin/pip install --no-deps espnet==202511
    /tmp/venv-espnet/bin/python tools/make_feature_fixtures.py --espnet

it writes espnet_blstmp.npz / .json instead: ESPnet's own Encoder('blstmp') (projection
after every layer, strided subsampling 1_2_2_1) with a Speller trained on the digits, and a
second encoder with random weights and the subsampling 1_3_2_1 (ESPnet's count of frames
kept after a stride of 3, (L + 1) // 3, can leave out a frame its x[:, ::3] keeps); for
each, held-out utterances, ESPnet's encoder output, and greedy and beam-5 (5-best) results
of the spec's search (tests/oracle_search.py) driving the Speller over that output.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(HERE, "..", "tests")
OUT = os.path.join(TESTS, "fixtures", "features")
sys.path.insert(0, TESTS)

import feature_tasks as tasks  # noqa: E402
from feature_models import ListenAttendSpell, ShowAttendTell, Speller, sequence_loss  # noqa: E402
from oracle_search import beam_search  # noqa: E402

BOS, EOS = 2, 3


def batch_tokens(words, vocab):
    ids = [[BOS] + [vocab.index(w) for w in sentence] + [EOS] for sentence in words]
    out = torch.zeros((len(ids), max(map(len, ids))), dtype=torch.long)
    for b, row in enumerate(ids):
        out[b, :len(row)] = torch.tensor(row)
    return out


def batch_frames(arrays):
    lengths = torch.tensor([len(a) for a in arrays])
    out = torch.zeros((len(arrays), int(lengths.max()), arrays[0].shape[1]))
    for b, a in enumerate(arrays):
        out[b, :len(a)] = torch.from_numpy(a)
    return out, lengths


def train(model, loss_of, data, steps, batch=64, lr=3e-3, seed=0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        picked = [data[i] for i in rng.integers(0, len(data), batch)]
        loss = loss_of(picked)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if step % 200 == 0 or step == steps - 1:
            print(f"  step {step}: loss {loss.item():.3f}", flush=True)
    return model.eval()


@torch.no_grad()
def greedy(step, state, max_length=20):
    tokens = []
    for _ in range(max_length):
        logits, state = step(torch.tensor([tokens[-1] if tokens else BOS]), state)
        token = int(logits.argmax())
        if token == EOS:
            break
        tokens.append(token)
    return tokens


def accuracy(decode, data, vocab):
    hits = sum([vocab[i] for i in decode(x)] == words for x, words in data)
    return hits / len(data)


# ---- Show, Attend and Tell -------------------------------------------------------------
def sat_step(model, regions):
    memory = torch.from_numpy(regions)[None]

    def step(token, state):
        logits, h, c, _ = model.step(token, *state, memory)
        return logits[0], (h, c)
    return step, model.init_hidden_state(memory)


def make_sat(options, steps):
    data = tasks.dataset("shapes", 4000, seed=0)
    held_out = tasks.dataset("shapes", 200, seed=1)
    torch.manual_seed(0)
    model = ShowAttendTell(len(tasks.SHAPES_VOCAB), tasks.REGION_FEATURES, **options)

    def loss_of(picked):
        regions = torch.from_numpy(np.stack([x for x, _ in picked]))
        captions = batch_tokens([w for _, w in picked], tasks.SHAPES_VOCAB)
        return sequence_loss(model(regions, captions), captions)

    train(model, loss_of, data, steps)
    score = accuracy(lambda x: greedy(*sat_step(model, x)), held_out, tasks.SHAPES_VOCAB)
    return model, score


# ---- Listen, Attend and Spell ----------------------------------------------------------
def speller_step(speller, memory):
    mask = torch.ones((1, memory.size(1)), dtype=torch.bool)

    def step(token, state):
        logits, h, c, _ = speller.step(token, *state, memory, mask)
        return logits[0], (h, c)
    return step, speller.initial_state(memory)


def make_las(steps):
    data = tasks.dataset("digits", 4000, seed=0)
    held_out = tasks.dataset("digits", 200, seed=1)
    torch.manual_seed(0)
    model = ListenAttendSpell(len(tasks.DIGITS_VOCAB), tasks.BANDS)

    def loss_of(picked):
        frames, lengths = batch_frames([x for x, _ in picked])
        memory, memory_lengths = model.encode(frames, lengths)
        targets = batch_tokens([w for _, w in picked], tasks.DIGITS_VOCAB)
        return sequence_loss(model.speller(memory, memory_lengths, targets), targets)

    train(model, loss_of, data, steps, batch=32)

    def decode(x):
        memory, _ = model.encode(torch.from_numpy(x)[None], torch.tensor([len(x)]))
        return greedy(*speller_step(model.speller, memory))
    return model, accuracy(decode, held_out, tasks.DIGITS_VOCAB)


def main_pytorch(args):
    os.makedirs(OUT, exist_ok=True)
    info = {}
    sizes = dict(embed_dim=16, decoder_dim=32, attention_dim=24)
    variants = {"show_attend_tell": dict(sizes, gate="vector", output="h",
                                         attention_activation="relu"),
                "show_attend_tell_xu": dict(sizes, gate="scalar", output="deep",
                                            attention_activation="tanh")}
    for name, options in variants.items():
        start = time.time()
        print(f"{name}:", flush=True)
        model, score = make_sat(options, args.steps)
        torch.save(model.state_dict(), os.path.join(OUT, f"{name}.pt"))
        info[name] = {"options": options, "steps": args.steps,
                      "held_out_greedy_exact": score, "seconds": round(time.time() - start)}
        print(f"  held-out captions exactly right (greedy): {score:.0%}", flush=True)
    start = time.time()
    print("las:", flush=True)
    model, score = make_las(args.steps)
    torch.save(model.state_dict(), os.path.join(OUT, "las.pt"))
    info["las"] = {"options": {"listener_hidden": 24, "pyramid_layers": 2}, "steps": args.steps,
                   "held_out_greedy_exact": score, "seconds": round(time.time() - start)}
    print(f"  held-out transcripts exactly right (greedy): {score:.0%}", flush=True)
    with open(os.path.join(OUT, "features.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")


# ---- ESPnet ----------------------------------------------------------------------------
ESPNET = {"elayers": 3, "eunits": 24, "eprojs": 32}


class EspnetAttendSpell(torch.nn.Module):
    def __init__(self, subsample):
        super().__init__()
        from espnet.nets.pytorch_backend.rnn.encoders import Encoder
        self.enc = Encoder("blstmp", tasks.BANDS, ESPNET["elayers"], ESPNET["eunits"],
                           ESPNET["eprojs"], np.array(subsample), 0.0)
        self.speller = Speller(len(tasks.DIGITS_VOCAB), ESPNET["eprojs"])


@torch.no_grad()
def espnet_results(model, data, out, prefix):
    """ESPnet's encoder output per utterance and the spec's search over the Speller."""
    for u, (x, _) in enumerate(data):
        memory, lengths, _ = model.enc(torch.from_numpy(x)[None], torch.tensor([len(x)]))
        memory = memory[:, :int(lengths[0])]
        out[f"{prefix}/frames/{u}"] = x
        out[f"{prefix}/memory/{u}"] = memory[0].numpy()
        mask = torch.ones((1, memory.size(1)), dtype=torch.bool)

        def step(states, tokens):
            n = len(states)
            h = torch.cat([s[0] for s in states])
            c = torch.cat([s[1] for s in states])
            logits, h, c, alpha = model.speller.step(torch.tensor(tokens), h, c,
                                                     memory.expand(n, -1, -1),
                                                     mask.expand(n, -1))
            log_probs = torch.log_softmax(logits.double(), -1).float().numpy()
            return log_probs, [(h[i:i + 1], c[i:i + 1]) for i in range(n)], alpha.numpy()

        for beam in (1, 5):
            hyps = beam_search(step, model.speller.initial_state(memory), BOS, EOS,
                               beam_size=beam, num_hypotheses=beam, max_length=20)
            for k, (tokens, score, attention) in enumerate(hyps):
                key = f"{prefix}/beam{beam}/{u}/{k}"
                out[f"{key}/tokens"] = np.array(tokens, np.int64)
                out[f"{key}/score"] = np.float64(score)
                out[f"{key}/attention"] = np.asarray(attention, np.float32)


def main_espnet(args):
    import espnet
    os.makedirs(OUT, exist_ok=True)
    out, info = {}, {"espnet": espnet.__version__, **ESPNET, "models": {}}
    held_out = tasks.dataset("digits", 12, seed=2)
    data = tasks.dataset("digits", 4000, seed=0)
    for name, subsample, steps in (("trained", [1, 2, 2, 1], args.steps),
                                   ("random", [1, 3, 2, 1], 0)):
        torch.manual_seed(0)
        model = EspnetAttendSpell(subsample)
        if steps:
            def loss_of(picked):
                frames, lengths = batch_frames(sorted((x for x, _ in picked), key=len,
                                                      reverse=True))
                words = [w for _, w in sorted(picked, key=lambda p: -len(p[0]))]
                memory, memory_lengths, _ = model.enc(frames, lengths)
                targets = batch_tokens(words, tasks.DIGITS_VOCAB)
                return sequence_loss(model.speller(memory, torch.as_tensor(memory_lengths),
                                                   targets), targets)
            print(f"{name}:", flush=True)
            train(model, loss_of, data, steps, batch=32)
        else:   # sharper than the default init, so the search meets real choices
            with torch.no_grad():
                model.speller.out.weight.mul_(6.0)
        model.eval()
        for key, value in model.state_dict().items():
            out[f"{name}/param/{key}"] = value.numpy()
        espnet_results(model, held_out, out, name)
        info["models"][name] = {"subsample": subsample, "steps": steps}
        if steps:
            def decode(x):
                memory, _, _ = model.enc(torch.from_numpy(x)[None], torch.tensor([len(x)]))
                return greedy(*speller_step(model.speller, memory))
            score = accuracy(decode, tasks.dataset("digits", 200, seed=1), tasks.DIGITS_VOCAB)
            info["models"][name]["held_out_greedy_exact"] = score
            print(f"  held-out transcripts exactly right (greedy): {score:.0%}", flush=True)
    info["utterances"] = len(held_out)
    np.savez_compressed(os.path.join(OUT, "espnet_blstmp.npz"), **out)
    with open(os.path.join(OUT, "espnet_blstmp.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--espnet", action="store_true",
                        help="make the ESPnet blstmp fixture (needs espnet installed)")
    parser.add_argument("--steps", type=int, default=800)
    args = parser.parse_args()
    torch.set_num_threads(1)
    (main_espnet if args.espnet else main_pytorch)(args)


if __name__ == "__main__":
    main()
