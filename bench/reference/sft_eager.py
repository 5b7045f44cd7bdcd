#!/usr/bin/python3
# One LoRA SFT training step written plainly in PyTorch eager, the baseline bench_sft is
# compared against (docs/benchmarks.md, "LoRA training"). The model is model_eager.Model
# (the model benchmark's reference) with a LoRA adapter on each of the seven projections,
# as PEFT builds it: A [r, in] Kaiming-uniform, B [out, r] zeros, scale alpha / r, adapters in
# f32 whatever the base dtype (PEFT's autocast_adapter_dtype), the input cast to the
# adapter's dtype and the result cast back. The step is what a transformers/PEFT user runs:
# logits of every position, cross-entropy with ignore_index=-100 (sum / scored tokens),
# backward, clip_grad_norm_(1.0), AdamW over the adapter's parameters.
#
#   OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/reference/sft_eager.py \
#       --shape tiny --dtype f32
# dtype: f32; bf16 (frozen base stored in bf16, adapters f32); autocast (f32 weights, forward
# under torch.autocast bf16, as transformers' bf16=True). One configuration per process, so
# the peak resident memory it prints (ru_maxrss) is that configuration's alone; it prints one
# line "RESULT {json}" for bench/run_sft_bench.sh. Timing convention (identical in
# bench_sft): tokens/s = B*T / (forward + backward + clipping + optimizer step), best and
# median over --steps after --warmup steps; also the median CPU time of a step (user +
# system, all threads), which a machine shared with other work disturbs far less.
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_eager import SHAPES, Model, rms_norm  # noqa: E402

TARGETS = ("q", "k", "v", "o", "gate", "up", "down")


class LoraModel(Model):
    def __init__(self, cfg, dtype, rank, alpha, seed=0):
        super().__init__(cfg, dtype, seed)
        self.scale = alpha / rank
        gen = torch.Generator().manual_seed(seed + 1)
        self.lora = []  # per layer: projection -> (A, B)
        for L in self.layers:
            pairs = {}
            for name in TARGETS:
                out_features, in_features = L[name].shape
                bound = 1.0 / math.sqrt(in_features)
                A = torch.empty(rank, in_features).uniform_(-bound, bound, generator=gen).requires_grad_()
                B = torch.zeros(out_features, rank, requires_grad=True)
                pairs[name] = (A, B)
            self.lora.append(pairs)

    def parameters(self):
        return [t for pairs in self.lora for pair in pairs.values() for t in pair]

    def linear(self, i, name, x):
        y = super().linear(i, name, x)
        A, B = self.lora[i][name]
        return y + (F.linear(F.linear(x.to(A.dtype), A), B) * self.scale).to(y.dtype)


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def batch(cfg, b, t, scored, seed):
    """Random ids [B, T] and labels [B, T]: the next token where scored, else -100. The first
    (1 - scored) of each row is the unscored "prompt"; the last position has no next token."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, cfg["vocab"], (b, t), generator=gen)
    labels = torch.full((b, t), -100, dtype=torch.int64)
    first = min(int(round((1.0 - scored) * t)), t - 1)
    labels[:, first:t - 1] = ids[:, first + 1:]
    return ids, labels


def train_step(model, opt, params, ids, labels, autocast):
    cfg = model.cfg
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        h = rms_norm(model.hidden(ids, 0, None), model.norm, cfg["eps"])
        logits = F.linear(h, model.lm_head).float()  # [B, T, V]
        loss = F.cross_entropy(logits.view(-1, cfg["vocab"]), labels.view(-1), ignore_index=-100,
                               reduction="sum") / (labels != -100).sum()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def main():
    ap = argparse.ArgumentParser(description="LoRA SFT step, PyTorch eager reference")
    ap.add_argument("--shape", default="tiny", choices=sorted(SHAPES))
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16", "autocast"])
    ap.add_argument("--batch", type=int, default=0, help="rows (0 = 4 for tiny, 1 for the 0.5B shape)")
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--scored", type=float, default=1.0, help="fraction of each row that is scored")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads; 0 = all cores")
    args = ap.parse_args()
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    cfg = SHAPES[args.shape]
    b = args.batch or (4 if args.shape == "tiny" else 1)
    base_dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    model = LoraModel(cfg, base_dtype, args.rank, args.alpha)
    params = model.parameters()
    opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)
    ids, labels = batch(cfg, b, args.seq, args.scored, seed=1)
    times, cpu, losses = [], [], []
    for step in range(args.warmup + args.steps):
        start, cpu_start = time.perf_counter(), cpu_seconds()
        losses.append(train_step(model, opt, params, ids, labels, args.dtype == "autocast"))
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
            cpu.append(cpu_seconds() - cpu_start)
    tokens = b * args.seq
    rec = dict(impl="python", shape=args.shape, dtype=args.dtype, batch=b, seq=args.seq, rank=args.rank,
               scored=args.scored, threads=threads, steps=args.steps,
               tok_s_best=round(tokens / min(times), 2), tok_s_median=round(tokens / statistics.median(times), 2),
               cpu_s_median=round(statistics.median(cpu), 3),
               peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
               first_loss=round(losses[0], 4), last_loss=round(losses[-1], 4))
    print("RESULT " + json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
