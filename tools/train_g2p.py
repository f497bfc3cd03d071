"""Train the default English grapheme-to-phoneme model on CMUdict (CPU).

    pip install ".[test]"     # torch==2.13.0 (CPU) and the package itself
    # the shipped model: one hour, two data-parallel workers (one per core), seed 1
    python tools/train_g2p.py --minutes 60 --workers 2 --threads 1 --arch luong \
        --cell lstm --encoder-layers 2 --hidden 256 --decoder-layers 2 --decoder-hidden 256 \
        --batch-size 256 --bf16 --dropout 0.2 --layer-dropout 0.2 --evals-per-epoch 1 \
        --constant-fraction 0 --seed 1 -o runs/g2p

Two worker processes, not two torch threads: at these sizes torch gains almost nothing
from a second intra-op thread (4.0 vs 3.9 batches/s measured), while two processes that
each run half of every batch and sum gradients (data_parallel.py; the update is the one a
single process makes on the whole batch) run 5.5 batches/s.

Architecture, chosen by validation (dev greedy WER after 10 minutes on one thread each,
side by side): Luong without input feeding, 2-layer biLSTM encoder 256, 2-layer LSTM
decoder 256: 34.6 %; the same with decoder 512: 37.4 %; the earlier Bahdanau biGRU 256 /
GRU 256 model needed 12 minutes for 37.4 %, and Luong with input feeding 45.0 % (those
two from `--minutes 12 --threads 1 --arch bahdanau|luong --input-feeding`).  What decides
it on a CPU is speed per epoch: without input feeding nothing feeds back from the
attention into the recurrence, so the whole teacher-forced decoder runs as one fused
LSTM call per layer (TrainSeq2Seq below), where Bahdanau and input feeding need a
Python loop of cell steps.

The model is the PyTorch reference `rnnsearch.reference.Seq2Seq` trained with teacher
forcing, Adam and label smoothing on every (word, pronunciation) pair of the train split
(see g2p_data.py); --bf16 runs the training forward under bfloat16 autocast (weights,
optimizer and the dev decoding stay float32; ~1.9x faster on CPUs with AVX512-BF16).
Dropout (embeddings, between encoder and decoder layers, the output layer's input) is
training-only: in eval mode it is the identity, so the exported weights are used exactly
as the spec says.

The learning rate follows a cosine from its peak at the start down to 5 % of it at the
end of the time budget (--constant-fraction F holds it constant for the first F of the
budget first; measured on the shipped recipe, dev greedy WER after the hour: F = 0.7:
28.39 % (with --ema), 0.5: 28.06 %, 0.25: 27.94 %, 0: 26.98 %, so the default is 0).
The dev split is decoded greedily (batched, same algorithm as the spec's K = 1 search)
several times per epoch; every improvement of dev WER is exported at once to the output
directory with `export_model_dir`, so the directory always holds the best model so far
(and a run stopped early still leaves a usable model).  A checkpoint (state_dict +
optimizer) of the latest and best models goes to OUTPUT_DIR.ckpt/ unless
--no-checkpoint.  With --ema DECAY the dev scoring, the export and best.pt use an
exponential moving average of the weights (weight_average.py) instead of the weights
themselves; training is unchanged.

--arch bahdanau: Bahdanau decoder (attend with s_{t-1}, then update; maxout readout),
additive attention.  --arch luong: Luong decoder (general attention, attentional layer;
--input-feeding to feed it back).  Both: dense tanh bridge from the encoder's final
states (with --cell lstm the cell states are bridged too).
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import random
import sys
import time

# Allocator and OpenMP settings that matter a lot on a small, shared CPU: without them
# glibc returns the large autograd buffers to the OS after every batch (and the next batch
# page-faults them in again: half the time went to the kernel), and OpenMP threads
# busy-wait at barriers, which makes 2 threads ~4x slower than 1 when the cores are busy
# with other work.  They must be set before the process starts, so re-exec once.
_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "1073741824",
        "MALLOC_TOP_PAD_": "268435456", "OMP_WAIT_POLICY": "PASSIVE"}
if __name__ == "__main__" and any(k not in os.environ for k in _ENV):
    os.execve(sys.executable, [sys.executable] + sys.argv, {**_ENV, **os.environ})

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data_parallel  # noqa: E402
import g2p_data  # noqa: E402
from weight_average import WeightAverage  # noqa: E402
from rnnsearch.reference import Seq2Seq, export_model_dir  # noqa: E402
from rnnsearch.reference.modules import run_cell  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT = os.path.join(ROOT, "models", "g2p-en")


def model_config(args) -> dict:
    encoder = {"embedding_size": args.embedding, "cell": args.cell, "hidden_size": args.hidden,
               "num_layers": args.encoder_layers, "bidirectional": True, "merge": "concat"}
    bridge = {"type": "dense", "from": "top_layer", "activation": "tanh",
              "lstm_cell": "bridged"}
    if args.arch == "bahdanau":
        attention = {"score": "additive", "size": args.attention_size}
        decoder = {"type": "bahdanau", "embedding_size": args.embedding, "cell": args.cell,
                   "hidden_size": args.decoder_hidden, "num_layers": 1,
                   "readout": "maxout", "readout_size": 2 * args.readout,
                   "readout_inputs": ["state", "context", "embedding"]}
    else:
        attention = {"score": "general"}
        decoder = {"type": "luong", "embedding_size": args.embedding, "cell": args.cell,
                   "hidden_size": args.decoder_hidden, "num_layers": args.decoder_layers,
                   "input_feeding": args.input_feeding, "attentional_layer": True}
    return {
        "format": "rnnsearch-model", "format_version": 1,
        "special_tokens": {"pad": g2p_data.PAD, "unk": g2p_data.UNK,
                           "bos": g2p_data.BOS, "eos": g2p_data.EOS},
        "source": {"vocabulary": "source_vocabulary.txt", "tokenizer": "chars",
                   "lowercase": True, "add_bos": False, "add_eos": False,
                   "max_length": 1024, "per_word": True},
        "target": {"vocabulary": "target_vocabulary.txt", "tokenizer": "whitespace"},
        "encoder": encoder, "bridge": bridge, "attention": attention, "decoder": decoder,
    }


class TrainSeq2Seq(Seq2Seq):
    """The reference Seq2Seq with faster teacher-forced forwards; parameters, decode_step
    and export are the reference's, and each forward computes exactly Seq2Seq.forward
    (tests/test_train_g2p.py checks both against it).

    - Bahdanau, one layer: attend with o_{t-1}, update, readout, output; the target
      embeddings, readout and output layer run once over all steps instead of per step.
    - Luong without input feeding: nothing feeds back from the attention into the
      recurrence, so each decoder layer runs over the whole target sequence in one fused
      torch.lstm / torch.gru call on the cell's own weights, and attention, attentional
      layer and output layer are batched matrix products over all steps.  This is what
      makes a deeper, wider model trainable within the hour on 2 cores.

    `layer_dropout` (training only, like the reference's dropout) is applied between
    decoder layers in the Luong forward."""

    layer_dropout = 0.0

    def forward(self, src, src_lengths, tgt_in):
        dec = self.decoder
        if dec.type == "luong" and not dec.input_feeding and not dec.residual and \
                dec.attentional is not None and \
                all(isinstance(c, (torch.nn.LSTMCell, torch.nn.GRUCell)) for c in dec.layers):
            return self._luong_forward(src, src_lengths, tgt_in)
        if dec.type != "bahdanau" or len(dec.layers) != 1:
            return super().forward(src, src_lengths, tgt_in)
        memory, state, mask = self.encode(src, src_lengths)
        keys = self.attention_keys(memory)
        B, T = tgt_in.shape
        embedded = dec.dropout(dec.embedding(tgt_in))          # [B, T, E]
        h = state.hidden[0]
        c = None if state.cell is None else state.cell[0]
        o = state.output
        outputs, contexts = [], []
        for t in range(T):
            context, _ = self.attention(o, keys, memory, mask)
            h, c = run_cell(dec.layers[0], torch.cat([embedded[:, t], context], dim=-1), h, c)
            o = h
            outputs.append(o)
            contexts.append(context)
        flat = lambda x: x.reshape(B * T, -1)  # noqa: E731
        r = dec.bahdanau_readout(flat(torch.stack(outputs, 1)), flat(torch.stack(contexts, 1)),
                                 flat(embedded))
        logits = dec.output(dec.dropout(r)).view(B, T, -1)
        return torch.log_softmax(logits, dim=-1)

    def _luong_forward(self, src, src_lengths, tgt_in):
        dec, attention = self.decoder, self.attention
        memory, state, mask = self.encode(src, src_lengths)
        keys = self.attention_keys(memory)                     # [B, S, K]
        x = dec.dropout(dec.embedding(tgt_in))                 # [B, T, E]
        for index, cell in enumerate(dec.layers):
            cell_weights = [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh]
            h0 = state.hidden[index][None].contiguous()
            if isinstance(cell, torch.nn.LSTMCell):
                c0 = state.cell[index][None].contiguous()
                x = torch._VF.lstm(x, (h0, c0), cell_weights, True, 1, 0.0, self.training,
                                   False, True)[0]
            else:
                x = torch._VF.gru(x, h0, cell_weights, True, 1, 0.0, self.training, False,
                                  True)[0]
            if index < len(dec.layers) - 1 and self.layer_dropout > 0:
                x = F.dropout(x, self.layer_dropout, self.training)
        o = x                                                  # [B, T, H]
        if attention.score == "additive":
            q = attention.query(o) if attention.query is not None else o
            scores = torch.tanh(q[:, :, None, :] + keys[:, None, :, :]) @ attention.v
        else:
            scores = torch.bmm(o, keys.transpose(1, 2))        # [B, T, S]
            if attention.score == "dot":
                scores = scores * attention.scale
            elif attention.score == "scaled_dot":
                scores = scores / math.sqrt(attention.query_width)
        weights = torch.softmax(scores.masked_fill(~mask[:, None, :], float("-inf")), dim=-1)
        context = torch.bmm(weights, memory)                   # [B, T, D_m]
        final = dec.attentional_activation(dec.attentional(torch.cat([context, o], dim=-1)))
        return torch.log_softmax(dec.output(dec.dropout(final)), dim=-1)


# ------------------------------------------------------------------------------ data

class Data:
    def __init__(self):
        splits = g2p_data.load_splits()
        self.train, self.dev = splits["train"], splits["dev"]
        self.source_vocab = g2p_data.source_vocabulary()
        self.target_vocab = g2p_data.target_vocabulary(self.train)
        self.src_ids = {t: i for i, t in enumerate(self.source_vocab)}
        self.tgt_ids = {t: i for i, t in enumerate(self.target_vocab)}
        self.pad = self.src_ids[g2p_data.PAD]
        self.unk = self.src_ids[g2p_data.UNK]
        self.bos = self.tgt_ids[g2p_data.BOS]
        self.eos = self.tgt_ids[g2p_data.EOS]
        # one training example per (word, pronunciation)
        self.pairs = [(self.encode_word(w), [self.tgt_ids[p] for p in pron])
                      for w, prons in self.train for pron in prons]

    def encode_word(self, word: str) -> list[int]:
        return [self.src_ids.get(c, self.unk) for c in g2p_data.word_to_chars(word)]

    def batches(self, batch_size: int, rng: random.Random):
        """Batches (lists of pairs) of similar source/target lengths, in random order."""
        order = sorted(range(len(self.pairs)), key=lambda i: (
            len(self.pairs[i][0]) + rng.random() * 2, len(self.pairs[i][1])))
        chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        rng.shuffle(chunks)
        for chunk in chunks:
            yield [self.pairs[i] for i in chunk]

    def tensors(self, pairs):
        return make_tensors(pairs, self.pad, self.bos, self.eos)


def make_tensors(pairs, pad: int, bos: int, eos: int):
    """(src, lengths, tgt_in, tgt_out) of (source ids, target ids) pairs; tgt_out holds
    -100 (ignored by the loss) past each target's EOS."""
    B = len(pairs)
    S = max(len(s) for s, _ in pairs)
    T = max(len(t) for _, t in pairs) + 1
    src = torch.full((B, S), pad, dtype=torch.long)
    tgt_in = torch.full((B, T), pad, dtype=torch.long)
    tgt_out = torch.full((B, T), -100, dtype=torch.long)
    lengths = torch.tensor([len(s) for s, _ in pairs])
    for b, (s, t) in enumerate(pairs):
        src[b, :len(s)] = torch.tensor(s)
        tgt_in[b, :len(t) + 1] = torch.tensor([bos] + t)
        tgt_out[b, :len(t) + 1] = torch.tensor(t + [eos])
    return src, lengths, tgt_in, tgt_out


# ------------------------------------------------------------------------- decoding

@torch.no_grad()
def greedy_decode(model: Seq2Seq, data: Data, words: list[str], batch_size: int = 512,
                  max_extra: int = 10) -> list[list[str]]:
    """Batched greedy search (the spec's K = 1: argmax, ties to the smaller id, stop at
    EOS); returns phoneme lists."""
    model.eval()
    out: list[list[str]] = [None] * len(words)  # type: ignore
    order = sorted(range(len(words)), key=lambda i: len(words[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        encoded = [data.encode_word(words[i]) for i in idx]
        B, S = len(idx), max(len(e) for e in encoded)
        src = torch.full((B, S), data.pad, dtype=torch.long)
        for b, e in enumerate(encoded):
            src[b, :len(e)] = torch.tensor(e)
        lengths = torch.tensor([len(e) for e in encoded])
        memory, state, mask = model.encode(src, lengths)
        keys = model.attention_keys(memory)
        tokens = torch.full((B,), data.bos, dtype=torch.long)
        done = torch.zeros(B, dtype=torch.bool)
        hyps = [[] for _ in range(B)]
        for _ in range(S + max_extra):
            logits, state, _ = model.decode_logits(tokens, state, memory, mask, keys)
            tokens = logits.argmax(dim=-1)
            for b in torch.nonzero(~done).flatten().tolist():
                v = int(tokens[b])
                if v == data.eos:
                    done[b] = True
                else:
                    hyps[b].append(data.target_vocab[v])
            if bool(done.all()):
                break
        for b, i in enumerate(idx):
            out[i] = hyps[b]
    return out


def dev_score(model, data, replicas, limit: int = 0):
    """Dev greedy score; each rank decodes its share of the words (all of them when
    there is one)."""
    entries = data.dev[:limit] if limit else data.dev
    words = [w for w, _ in entries]
    predictions = replicas.gather(greedy_decode(model, data, replicas.share(words)))
    return g2p_data.score(predictions, [p for _, p in entries])


# ------------------------------------------------------------------------- training

def batch_loss(model, tensors, batch_tokens: int, label_smoothing: float, bf16: bool):
    """(loss to backpropagate, summed NLL, target tokens) of one batch or of one rank's
    share of it: sums over the tokens divided by `batch_tokens`, the whole batch's token
    count, so the shares' gradients add up to the whole batch's."""
    src, lengths, tgt_in, tgt_out = tensors
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        log_probs = model(src, lengths, tgt_in)
    log_probs = log_probs.reshape(-1, log_probs.size(-1)).float()
    targets = tgt_out.reshape(-1)
    mask = targets != -100
    nll = F.nll_loss(log_probs, targets, ignore_index=-100, reduction="sum")
    loss = nll
    if label_smoothing > 0:
        # uniform smoothing over the vocabulary, on real target positions only
        smooth = -log_probs[mask].mean(dim=-1).sum()
        loss = (1 - label_smoothing) * nll + label_smoothing * smooth
    return loss / batch_tokens, nll.item(), int(mask.sum())


def backward_batch(model, pairs, tensors, replicas, label_smoothing: float, bf16: bool):
    """One training step's gradients: this rank backpropagates its share of the batch
    `pairs` (made into tensors by `tensors`, e.g. Data.tensors) and the gradients are
    summed over ranks. Every rank knows the whole batch, so each normalises by the whole
    batch's token count (each target plus its EOS) and the sum is the gradient one process
    gets on the whole batch. Returns this rank's (summed NLL, target tokens)."""
    batch_tokens = sum(len(t) + 1 for _, t in pairs)
    loss, nll, tokens = batch_loss(model, tensors(replicas.share(pairs)), batch_tokens,
                                   label_smoothing, bf16)
    loss.backward()
    replicas.sum_gradients(model.parameters())
    return nll, tokens


def learning_rate(progress: float, peak: float, constant_fraction: float,
                  min_fraction: float) -> float:
    """The schedule at `progress` (elapsed / budget): `peak` for the first
    `constant_fraction`, then a cosine down to `min_fraction * peak` at 1 (and after)."""
    x = min(progress, 1.0)
    if x <= constant_fraction:
        return peak
    decay = (x - constant_fraction) / max(1e-9, 1 - constant_fraction)
    low = peak * min_fraction
    return low + (peak - low) * 0.5 * (1 + math.cos(math.pi * decay))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", default=DEFAULT_OUTPUT, help="model directory to write")
    ap.add_argument("--arch", choices=("bahdanau", "luong"), default="bahdanau")
    ap.add_argument("--minutes", type=float, default=45.0, help="training time budget")
    ap.add_argument("--max-epochs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--workers", type=int, default=1,
                    help="data-parallel processes, one per core (each runs its share of "
                         "every batch; the update is the same as one process's)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-fraction", type=float, default=0.05)
    ap.add_argument("--constant-fraction", type=float, default=0.0,
                    help="part of the budget at constant learning rate before cosine decay")
    ap.add_argument("--clip", type=float, default=5.0)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--cell", choices=("gru", "lstm"), default="gru",
                    help="encoder and decoder cell")
    ap.add_argument("--embedding", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=256, help="encoder LSTM size per direction")
    ap.add_argument("--encoder-layers", type=int, default=1)
    ap.add_argument("--decoder-hidden", type=int, default=256)
    ap.add_argument("--decoder-layers", type=int, default=1, help="(luong)")
    ap.add_argument("--input-feeding", action="store_true",
                    help="(luong) feed the attentional vector back; trains step by step")
    ap.add_argument("--layer-dropout", type=float, default=0.0,
                    help="(luong, training only) dropout between decoder layers")
    ap.add_argument("--attention-size", type=int, default=256)
    ap.add_argument("--readout", type=int, default=256, help="maxout output width (bahdanau)")
    ap.add_argument("--bf16", action="store_true",
                    help="bfloat16 autocast for the training forward (weights, optimizer and "
                         "dev decoding stay float32): ~1.9x faster on CPUs with AVX512-BF16")
    ap.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                    help="score and export an exponential moving average of the weights "
                         "(e.g. 0.999; 0 = the weights themselves)")
    ap.add_argument("--evals-per-epoch", type=int, default=2)
    ap.add_argument("--dev-limit", type=int, default=0, help="score only N dev words")
    ap.add_argument("--no-checkpoint", action="store_true")
    args = ap.parse_args(argv)
    data_parallel.run(args.workers, train, args)


def train(rank: int, world: int, args) -> None:
    replicas = data_parallel.Replicas(rank, world)
    log = print if replicas.is_main else (lambda *a, **k: None)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)       # the same batch order on every rank
    start = time.time()
    budget = args.minutes * 60.0
    data = Data()
    config = model_config(args)
    model = TrainSeq2Seq(config, len(data.source_vocab), len(data.target_vocab),
                         dropout=args.dropout)
    model.layer_dropout = args.layer_dropout
    replicas.broadcast_parameters(model)
    if rank:
        torch.manual_seed(args.seed * 1000 + rank)   # own dropout masks
    n_params = sum(p.numel() for p in model.parameters())
    log(f"train {len(data.train)} words / {len(data.pairs)} pairs, dev {len(data.dev)} "
          f"words; vocab {len(data.source_vocab)} -> {len(data.target_vocab)}; "
          f"arch {args.arch}, {n_params} parameters ({4 * n_params / 1e6:.1f} MB)",
          flush=True)
    log("args:", vars(args), flush=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    # every rank keeps the same average (the weights are the same on every rank), so the
    # dev decoding can still be shared
    average = WeightAverage(model, args.ema) if args.ema else None
    ckpt_dir = args.output.rstrip("/") + ".ckpt"
    best_wer, best_state, best_where = float("inf"), None, None
    batches_per_epoch = math.ceil(len(data.pairs) / args.batch_size)
    eval_every = max(1, batches_per_epoch // max(1, args.evals_per_epoch))

    def evaluate(epoch: int, step: int, loss: float, elapsed: float) -> None:
        nonlocal best_wer, best_state, best_where
        scored = average.model if average else model
        s = dev_score(scored, data, replicas, args.dev_limit)
        if not replicas.is_main:
            model.train()
            return
        improved = s.wer < best_wer
        if improved:
            best_wer, best_where = s.wer, f"epoch {epoch} step {step}"
            best_state = copy.deepcopy(scored.state_dict())
            scored.eval()
            export_model_dir(scored, args.output, data.source_vocab, data.target_vocab,
                             config)
        if not args.no_checkpoint:
            os.makedirs(ckpt_dir, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "average": average.state_dict() if average else None,
                        "config": config, "args": vars(args), "epoch": epoch,
                        "step": step}, os.path.join(ckpt_dir, "last.pt"))
            if improved:
                torch.save({"model": best_state, "config": config, "args": vars(args),
                            "dev_wer": best_wer}, os.path.join(ckpt_dir, "best.pt"))
        print(f"epoch {epoch} step {step}/{batches_per_epoch}: train loss {loss:.4f}  "
              f"dev greedy {s}{'  *best, exported' if improved else ''}  "
              f"lr {optimizer.param_groups[0]['lr']:.2e}  "
              f"elapsed {elapsed / 60:.1f} min", flush=True)
        model.train()

    out_of_time = False
    elapsed = 0.0
    for epoch in range(1, args.max_epochs + 1):
        model.train()
        total, count, window_total, window_count = 0.0, 0, 0.0, 0
        epoch_start = time.time()
        for step, pairs in enumerate(data.batches(args.batch_size, rng), 1):
            # rank 0's clock decides the schedule and the end for every rank
            elapsed = replicas.main_value(time.time() - start)
            if len(pairs) < world:
                continue                  # a last batch too small to share
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(elapsed / budget, args.lr, args.constant_fraction,
                                            args.min_lr_fraction)
            optimizer.zero_grad(set_to_none=True)
            nll, tokens = backward_batch(model, pairs, data.tensors, replicas,
                                         args.label_smoothing, args.bf16)
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            if average:
                average.update(model)
            loss = nll / max(tokens, 1)             # this rank's share, for the log
            total += loss
            count += 1
            window_total += loss
            window_count += 1
            if step % 100 == 0:
                rate = step / (time.time() - epoch_start)
                log(f"  epoch {epoch} step {step}/{batches_per_epoch} nll "
                    f"{window_total / window_count:.4f}  {rate:.1f} batches/s  "
                    f"elapsed {elapsed / 60:.1f} min", flush=True)
                window_total, window_count = 0.0, 0
            if elapsed > budget:
                out_of_time = True
                break
            if step % eval_every == 0 and step + eval_every // 2 < batches_per_epoch:
                evaluate(epoch, step, total / count, elapsed)
        evaluate(epoch, step, total / max(count, 1), elapsed)
        if out_of_time:
            break

    scored_name = " (averaged weights)" if average else ""
    log(f"done after {elapsed / 60:.1f} min; best dev greedy WER{scored_name} "
        f"{100 * best_wer:.2f}% at {best_where}; model in {args.output}", flush=True)


if __name__ == "__main__":
    main()
