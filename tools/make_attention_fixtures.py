"""Make the fixtures that test the stateful attention types against the toolkits' own
modules: ESPnet's espnet/nets/pytorch_backend/rnn/attentions.py and decoders.py, and
SpeechBrain's speechbrain/nnet/attention.py (tests/fixtures/README.md, "Attention").

Run it with the Python of a throwaway virtualenv that has torch and the toolkits installed
without their dependencies (their pinned stacks never go next to the project):

    python -m venv /tmp/venv-toolkits
    /tmp/venv-toolkits/bin/pip install torch==2.13.0 numpy tqdm pyyaml hyperpyyaml \
        packaging joblib scipy
    /tmp/venv-toolkits/bin/pip install --no-deps espnet==202511 speechbrain==1.1.2
    /tmp/venv-toolkits/bin/python tools/make_attention_fixtures.py

SpeechBrain's package __init__ imports torchaudio, which has no build for this torch; the
attention module never calls it, so an empty stand-in module takes its place.

Writes tests/fixtures/attention/:
  modules.npz   per toolkit attention type: its parameters (state_dict), a few utterances'
                memories and decoder queries, and the module's own contexts and weights over
                several steps, each step fed the module's own previous state, one utterance
                at a time (as the toolkits decode).
  espnet_decoder.npz / .json   a seq2seq whose decoder is ESPnet's RNN Decoder with
                location-aware attention (and a user's embedding + bidirectional LSTM
                encoder), trained for 400 steps with ESPnet's own loss on the toy task of
                tools/fixture_common.py: its state_dict, ten sources (lengths 1..100 and
                three task-like ones), and the spec's greedy and beam-5 search
                (tests/oracle_search.py) driving ESPnet's own Decoder.score one step at a
                time.
  speechbrain_decoder.npz / .json   the same for SpeechBrain's AttentionalRNNDecoder with
                LocationAwareAttention (its forward_step driven by the spec's search), trained
                with a cross-entropy loss on its outputs.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "attention")
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from oracle_search import beam_search  # noqa: E402

EPROJS, DUNITS, ADIM, CHANS, FILTS, AWIN, HEADS = 16, 12, 10, 3, 2, 3, 2
LENGTHS = (1, 7, 40)
STEPS = 6


def espnet_modules():
    from espnet.nets.pytorch_backend.rnn import attentions as A
    made = {}
    for atype in ("add", "dot", "location", "location2d", "location_recurrent", "coverage",
                  "coverage_location", "multi_head_dot", "multi_head_add", "multi_head_loc",
                  "multi_head_multi_res_loc"):
        made[f"espnet_{atype}"] = A.initial_att(atype, EPROJS, DUNITS, HEADS, ADIM, AWIN,
                                                CHANS, FILTS)
    made["espnet_forward"] = A.AttForward(EPROJS, DUNITS, ADIM, CHANS, FILTS)
    made["espnet_forward_ta"] = A.AttForwardTA(EPROJS, DUNITS, ADIM, CHANS, FILTS, 7)
    return made


def speechbrain_modules():
    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
    from speechbrain.nnet.attention import LocationAwareAttention
    return {"speechbrain_location": LocationAwareAttention(EPROJS, DUNITS, ADIM, 8, CHANS,
                                                           FILTS)}


def weights_of(name, state):
    """The weights a step returned, from the state the toolkit feeds back."""
    if name.startswith("speechbrain") or name.startswith("espnet_forward"):
        return state
    kind = name[len("espnet_"):]
    if kind == "location2d":
        return state[:, -1]
    if kind in ("coverage", "coverage_location"):
        return state[-1]
    if kind == "location_recurrent":
        return state[0]
    if kind.startswith("multi_head"):
        return torch.stack(state, dim=1)  # [1, heads, T]
    return state


@torch.no_grad()
def module_fixtures(out: dict):
    modules = {**espnet_modules(), **speechbrain_modules()}
    meta = {"eprojs": EPROJS, "dunits": DUNITS, "adim": ADIM, "aconv_chans": CHANS,
            "aconv_filts": FILTS, "awin": AWIN, "aheads": HEADS, "steps": STEPS,
            "lengths": LENGTHS, "types": sorted(modules), "odim": 7}
    for seed, (name, module) in enumerate(sorted(modules.items())):
        torch.manual_seed(100 + seed)
        for p in module.parameters():  # wider than the default init: sharper weights
            p.uniform_(-0.6, 0.6)
        module.eval()
        for key, value in module.state_dict().items():
            out[f"{name}/param/{key}"] = value.numpy()
        for u, T in enumerate(LENGTHS):
            memory = torch.randn(1, T, EPROJS)
            queries = torch.randn(STEPS, DUNITS)
            out_prev = torch.randn(STEPS, 7)
            module.reset()
            state, contexts, weights = None, [], []
            for t in range(STEPS):
                z = queries[t:t + 1]
                if name == "speechbrain_location":
                    c, w = module(memory, torch.tensor([float(T)]), z)
                    state = w
                elif name == "espnet_forward_ta":
                    c, state = module(memory, [T], z, state, out_prev[t:t + 1])
                else:
                    c, state = module(memory, [T], z, state)
                    if isinstance(state, list):  # the beam search copies lists per hypothesis
                        state = list(state)
                contexts.append(c[0])
                weights.append(weights_of(name, state)[0])
            out[f"{name}/{u}/memory"] = memory[0].numpy()
            out[f"{name}/{u}/queries"] = queries.numpy()
            out[f"{name}/{u}/out_prev"] = out_prev.numpy()
            out[f"{name}/{u}/contexts"] = torch.stack(contexts).numpy()
            out[f"{name}/{u}/weights"] = torch.stack(weights).numpy()
    return meta


# ---------------------------------------------------------------- a whole ESPnet decoder

# the toy task of tools/fixture_common.py: reverse a sequence of letters, upper-cased
LETTERS = "abcdefghijkl"
SRC_TOKENS = ["<pad>", "<unk>"] + list(LETTERS)
TGT_TOKENS = ["<blank>", "<unk>"] + list(LETTERS.upper()) + ["<sos/eos>"]
SRC_VOCAB, ODIM = len(SRC_TOKENS), len(TGT_TOKENS)
EMB, ENC_HIDDEN, DEC_UNITS, DEC_LAYERS = 8, 16, 24, 2



def _encode_batch(model, sources):
    """The user's embedding + bidirectional LSTM over a padded batch: (memory, lengths)."""
    lengths = torch.tensor([len(s) for s in sources])
    padded = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in sources],
                                             batch_first=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(model.embed(padded), lengths,
                                                     batch_first=True, enforce_sorted=False)
    memory, _ = torch.nn.utils.rnn.pad_packed_sequence(model.enc(packed)[0], batch_first=True)
    return memory, lengths

class Model(torch.nn.Module):
    """A user's encoder (embedding + bidirectional LSTM) under ESPnet's RNN decoder with
    location-aware attention (ESPnet's own Decoder and AttLoc)."""

    def __init__(self):
        super().__init__()
        from espnet.nets.pytorch_backend.rnn.attentions import AttLoc
        from espnet.nets.pytorch_backend.rnn.decoders import Decoder
        self.embed = torch.nn.Embedding(SRC_VOCAB, EMB)
        self.enc = torch.nn.LSTM(EMB, ENC_HIDDEN, bidirectional=True, batch_first=True)
        att = AttLoc(2 * ENC_HIDDEN, DEC_UNITS, ADIM, CHANS, FILTS)
        self.dec = Decoder(2 * ENC_HIDDEN, ODIM, "lstm", DEC_LAYERS, DEC_UNITS, ODIM - 1,
                           ODIM - 1, torch.nn.ModuleList([att]))

    def encode(self, ids):
        return self.enc(self.embed(torch.tensor([ids])))[0][0]

    def loss(self, sources, targets):
        memory, lengths = _encode_batch(self, sources)
        ys = torch.nn.utils.rnn.pad_sequence([torch.tensor(t) for t in targets],
                                             batch_first=True, padding_value=-1)
        return self.dec(memory, lengths, ys)[0]


def toy_pair(rng):
    x = [LETTERS[i] for i in rng.integers(0, len(LETTERS), rng.integers(2, 8))]
    return ([SRC_TOKENS.index(c) for c in x],
            [TGT_TOKENS.index(c.upper()) for c in reversed(x)])


def train(model, steps=400):
    """ESPnet's own training loss (Decoder.forward), a few hundred Adam steps."""
    rng = np.random.default_rng(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for step in range(steps):
        batch = [toy_pair(rng) for _ in range(32)]
        loss = model.loss([b[0] for b in batch], [b[1] for b in batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"trained {steps} steps, last loss {float(loss.detach()):.3f}")
    model.eval()


def decoder_fixture(out: dict) -> dict:
    torch.manual_seed(7)
    model = Model()
    train(model)
    with torch.no_grad():
        return _decode(model, out)


def _decode(model, out):
    for key, value in model.state_dict().items():
        out[f"state/{key}"] = value.numpy()
    sources = _sources()
    eos = ODIM - 1
    results = {"sources": sources, "eos": eos, "source_tokens": SRC_TOKENS,
               "target_tokens": TGT_TOKENS, "greedy": [], "beam5": []}
    dec = model.dec
    for i, ids in enumerate(sources):
        x = model.encode(ids)

        def step(states, tokens):
            log_probs, new_states, attention = [], [], []
            for state, token in zip(states, tokens):
                state = dict(state, a_prev=copy.copy(state["a_prev"]))
                logp, new = dec.score(torch.tensor([token]), state, x)
                log_probs.append(logp.numpy())
                new_states.append(new)
                attention.append(new["a_prev"][0].numpy())
            return np.stack(log_probs), new_states, np.stack(attention)

        for mode, beam, nbest in (("greedy", 1, 1), ("beam5", 5, 3)):
            hyps = beam_search(step, dec.init_state(x), eos, eos, beam_size=beam,
                               num_hypotheses=nbest, max_length=30)
            results[mode].append([[list(map(int, h[0])), float(h[1])] for h in hyps])
            for h, hyp in enumerate(hyps):
                out[f"attention/{mode}/{i}/{h}"] = np.asarray(hyp[2], np.float32).reshape(
                    len(hyp[0]), len(ids))
    return results


class SpeechBrainModel(torch.nn.Module):
    """A user's encoder and embeddings around SpeechBrain's AttentionalRNNDecoder with its
    LocationAwareAttention (projected context, fed back to the first layer; the query is
    the new top state; dec_out = proj([c; h]) then the user's output layer)."""

    def __init__(self):
        super().__init__()
        sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
        from speechbrain.nnet.RNN import AttentionalRNNDecoder
        self.embed = torch.nn.Embedding(SRC_VOCAB, EMB)
        self.enc = torch.nn.LSTM(EMB, ENC_HIDDEN, bidirectional=True, batch_first=True)
        self.tgt_embed = torch.nn.Embedding(ODIM, EMB)
        self.dec = AttentionalRNNDecoder("lstm", "location", DEC_UNITS, ADIM, DEC_LAYERS,
                                         enc_dim=2 * ENC_HIDDEN, input_size=EMB,
                                         channels=CHANS, kernel_size=FILTS)
        self.fc = torch.nn.Linear(DEC_UNITS, ODIM)

    def encode(self, ids):
        return self.enc(self.embed(torch.tensor([ids])))[0]

    def loss(self, sources, targets):
        memory, lengths = _encode_batch(self, sources)
        eos = ODIM - 1
        inputs = torch.nn.utils.rnn.pad_sequence([torch.tensor([eos] + t) for t in targets],
                                                 batch_first=True, padding_value=eos)
        outputs = torch.nn.utils.rnn.pad_sequence([torch.tensor(t + [eos]) for t in targets],
                                                  batch_first=True, padding_value=-1)
        hidden, _ = self.dec(self.tgt_embed(inputs), memory, lengths / memory.size(1))
        logits = self.fc(hidden)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, ODIM), outputs.reshape(-1),
                                                 ignore_index=-1)


def speechbrain_fixture(out: dict) -> dict:
    torch.manual_seed(11)
    model = SpeechBrainModel()
    train(model)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            out[f"state/{key}"] = value.numpy()
        dec, eos = model.dec, ODIM - 1
        sources = _sources()
        results = {"sources": sources, "eos": eos, "source_tokens": SRC_TOKENS,
                   "target_tokens": TGT_TOKENS, "greedy": [], "beam5": []}
        for i, ids in enumerate(sources):
            memory, length = model.encode(ids), torch.tensor([float(len(ids))])
            dec.attn.reset()

            def step(states, tokens):
                log_probs, new_states, attention = [], [], []
                for (hs, c, previous), token in zip(states, tokens):
                    if previous is not None:  # the module keeps the previous weights itself
                        dec.attn.prev_attn = previous
                    out_, hs, c, w = dec.forward_step(model.tgt_embed(torch.tensor([token])),
                                                      hs, c, memory, length)
                    log_probs.append(torch.log_softmax(model.fc(out_), dim=-1)[0].numpy())
                    new_states.append((hs, c, dec.attn.prev_attn))
                    attention.append(w[0].numpy())
                return np.stack(log_probs), new_states, np.stack(attention)

            start = (None, torch.zeros(1, ADIM), None)
            for mode, beam, nbest in (("greedy", 1, 1), ("beam5", 5, 3)):
                dec.attn.reset()
                hyps = beam_search(step, start, eos, eos, beam_size=beam, num_hypotheses=nbest,
                                   max_length=30)
                results[mode].append([[list(map(int, h[0])), float(h[1])] for h in hyps])
                for h, hyp in enumerate(hyps):
                    out[f"attention/{mode}/{i}/{h}"] = np.asarray(hyp[2], np.float32).reshape(
                        len(hyp[0]), len(ids))
    return results


def _sources():
    rng = np.random.default_rng(0)
    sources = [rng.integers(2, SRC_VOCAB, n).tolist()
               for n in np.linspace(1, 100, 10).astype(int)]
    sources[3:6] = [toy_pair(rng)[0] for _ in range(3)]
    return sources


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    modules = {}
    meta = module_fixtures(modules)
    np.savez_compressed(os.path.join(args.out, "modules.npz"), **modules)
    with open(os.path.join(args.out, "modules.json"), "w") as f:
        json.dump(meta, f, indent=1)
    decoder = {}
    results = decoder_fixture(decoder)
    np.savez_compressed(os.path.join(args.out, "espnet_decoder.npz"), **decoder)
    with open(os.path.join(args.out, "espnet_decoder.json"), "w") as f:
        json.dump(results, f)
    decoder = {}
    results = speechbrain_fixture(decoder)
    np.savez_compressed(os.path.join(args.out, "speechbrain_decoder.npz"), **decoder)
    with open(os.path.join(args.out, "speechbrain_decoder.json"), "w") as f:
        json.dump(results, f)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
