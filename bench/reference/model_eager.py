#!/usr/bin/python3
# The Llama-family decoder written plainly in PyTorch eager, as the baseline bench_model is
# compared against (docs/benchmarks.md, "Model core"). Same shapes, same random-weight
# scheme, same measurement as bench/bench_model.cpp: prompt of P tokens prefilled once, then
# N greedy tokens, one forward per token with a preallocated KV cache.
#
# Run with Debian's python3-torch (/usr/bin/python3; the pyenv python3 on PATH has no torch):
#   OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/reference/model_eager.py --quick
# Each measured configuration prints one line "RESULT {json}" for bench/run_model_bench.sh.
# bench/reference/sft_eager.py trains LoRA on this same model (Model.linear and
# Model.hidden are its hooks).
#
# Timing convention (identical in bench_model): prefill tokens/s = B*P / (forward over the
# prompt, logits of the last position); decode tokens/s = B*(N-1) / (the N argmaxes and N-1
# one-token forwards after prefill). Best of --repeats after one warm-up run.
import argparse
import json
import math
import os
import time

import torch
import torch.nn.functional as F

SHAPES = {
    # name: hidden, layers, heads, kv_heads, intermediate, vocab, tied, qkv_bias, rope_theta, eps
    "tiny": dict(hidden=256, layers=4, heads=8, kv_heads=4, inter=688, vocab=8000, tied=False, qkv_bias=False,
                 theta=10000.0, eps=1e-5),
    "qwen2.5-0.5b-shape": dict(hidden=896, layers=24, heads=14, kv_heads=2, inter=4864, vocab=151936, tied=True,
                               qkv_bias=True, theta=1000000.0, eps=1e-6),
}


def rms_norm(x, w, eps):
    # f32 statistics, scale in the input dtype (as transformers' LlamaRMSNorm)
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return w * x32.to(x.dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def repeat_kv(x, n_rep):
    # [B, K, S, D] -> [B, K*n_rep, S, D]
    if n_rep == 1:
        return x
    b, k, s, d = x.shape
    return x[:, :, None, :, :].expand(b, k, n_rep, s, d).reshape(b, k * n_rep, s, d)


class Model:
    def __init__(self, cfg, dtype, seed=0):
        torch.manual_seed(seed)
        self.cfg = cfg
        c, f, v = cfg["hidden"], cfg["inter"], cfg["vocab"]
        self.head_dim = c // cfg["heads"]
        d, h, k = self.head_dim, cfg["heads"], cfg["kv_heads"]

        def w(*shape):
            return (torch.randn(*shape) * 0.02).to(dtype)

        self.embed = w(v, c)
        self.layers = []
        for _ in range(cfg["layers"]):
            L = dict(q=w(h * d, c), k=w(k * d, c), v=w(k * d, c), o=w(c, h * d),
                     gate=w(f, c), up=w(f, c), down=w(c, f),
                     ln1=torch.ones(c, dtype=dtype), ln2=torch.ones(c, dtype=dtype))
            if cfg["qkv_bias"]:
                L.update(qb=w(h * d), kb=w(k * d), vb=w(k * d))
            else:
                L.update(qb=None, kb=None, vb=None)
            self.layers.append(L)
        self.norm = torch.ones(c, dtype=dtype)
        self.lm_head = self.embed if cfg["tied"] else w(v, c)
        self.inv_freq = 1.0 / (cfg["theta"] ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
        self.dtype = dtype

    def weight_bytes(self):
        tensors = [self.embed, self.norm] + ([] if self.cfg["tied"] else [self.lm_head])
        for L in self.layers:
            tensors += [t for t in L.values() if t is not None]
        return sum(t.numel() * t.element_size() for t in tensors)

    def new_cache(self, batch, capacity):
        k, d = self.cfg["kv_heads"], self.head_dim
        return [(torch.zeros(batch, k, capacity, d, dtype=self.dtype), torch.zeros(batch, k, capacity, d, dtype=self.dtype))
                for _ in self.layers]

    def linear(self, i, name, x):
        """Layer i's projection `name` (q k v o gate up down) of x, with its bias if it has one."""
        L = self.layers[i]
        return F.linear(x, L[name], L.get(name + "b"))

    def forward(self, ids, start, cache):
        """ids [B, T] at positions start..start+T-1; writes k/v into cache; logits [B, V] f32 of the last."""
        x = self.hidden(ids, start, cache)
        x = rms_norm(x[:, -1], self.norm, self.cfg["eps"])
        return F.linear(x, self.lm_head).float()

    def hidden(self, ids, start, cache):
        """Output of the last decoder layer [B, T, C] (before the final norm); cache None: the
        keys are just these T positions (a training forward)."""
        cfg, d = self.cfg, self.head_dim
        b, t = ids.shape
        h_heads, k_heads = cfg["heads"], cfg["kv_heads"]
        x = F.embedding(ids, self.embed)
        pos = torch.arange(start, start + t, dtype=torch.float32)
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(self.dtype), emb.sin().to(self.dtype)  # [T, D]
        s = start + t
        mask = None
        if t > 1:
            mask = torch.full((t, s), float("-inf")).triu(start + 1)  # [T, S]
        scale = 1.0 / math.sqrt(d)
        for i, L in enumerate(self.layers):
            hn = rms_norm(x, L["ln1"], cfg["eps"])
            q = self.linear(i, "q", hn).view(b, t, h_heads, d).transpose(1, 2)
            k = self.linear(i, "k", hn).view(b, t, k_heads, d).transpose(1, 2)
            v = self.linear(i, "v", hn).view(b, t, k_heads, d).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if cache is not None:
                kc, vc = cache[i]
                kc[:, :, start:s] = k
                vc[:, :, start:s] = v
                k, v = kc[:, :, :s], vc[:, :, :s]
            keys = repeat_kv(k, h_heads // k_heads)
            values = repeat_kv(v, h_heads // k_heads)
            scores = torch.matmul(q, keys.transpose(2, 3)).float() * scale
            if mask is not None:
                scores = scores + mask
            probs = torch.softmax(scores, dim=-1).to(self.dtype)
            attn = torch.matmul(probs, values).transpose(1, 2).reshape(b, t, h_heads * d)
            x = x + self.linear(i, "o", attn)
            hn = rms_norm(x, L["ln2"], cfg["eps"])
            x = x + self.linear(i, "down", F.silu(self.linear(i, "gate", hn)) * self.linear(i, "up", hn))
        return x


def generate(model, prompt, new_tokens):
    """Greedy decode; returns (tokens [B, N], prefill seconds, decode seconds)."""
    b, p = prompt.shape
    cache = model.new_cache(b, p + new_tokens)
    t0 = time.perf_counter()
    logits = model.forward(prompt, 0, cache)
    t1 = time.perf_counter()
    out = []
    for step in range(new_tokens):
        token = logits.argmax(-1)
        out.append(token)
        if step + 1 == new_tokens:
            break
        logits = model.forward(token.view(b, 1), p + step, cache)
    t2 = time.perf_counter()
    return torch.stack(out, 1), t1 - t0, t2 - t1


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shapes", default="tiny,qwen2.5-0.5b-shape")
    ap.add_argument("--dtypes", default="f32,bf16")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads; 0 = all cores")
    ap.add_argument("--quick", action="store_true", help="tiny shape, f32, repeats 2")
    args = ap.parse_args()
    if args.quick:
        args.shapes, args.dtypes, args.repeats = "tiny", "f32", 2
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    env = {k: os.environ.get(k, "") for k in ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    print(f"# python eager: torch {torch.__version__}, threads {threads}, env {env}", flush=True)
    dtypes = {"f32": torch.float32, "bf16": torch.bfloat16}
    with torch.inference_mode():
        for shape in args.shapes.split(","):
            for dname in args.dtypes.split(","):
                model = Model(SHAPES[shape], dtypes[dname])
                for batch in [int(x) for x in args.batches.split(",")]:
                    gen = torch.Generator().manual_seed(1)
                    prompt = torch.randint(0, SHAPES[shape]["vocab"], (batch, args.prompt), generator=gen)
                    generate(model, prompt, min(args.new_tokens, 4))  # warm-up
                    best_p, best_d = 0.0, 0.0
                    for _ in range(args.repeats):
                        _, tp, td = generate(model, prompt, args.new_tokens)
                        best_p = max(best_p, batch * args.prompt / tp)
                        best_d = max(best_d, batch * (args.new_tokens - 1) / td)
                    rec = dict(impl="python", shape=shape, dtype=dname, batch=batch, prompt=args.prompt,
                               new_tokens=args.new_tokens, prefill_tok_s=round(best_p, 2),
                               decode_tok_s=round(best_d, 2), weight_bytes=model.weight_bytes(), threads=threads)
                    print("RESULT " + json.dumps(rec), flush=True)
                del model


if __name__ == "__main__":
    main()
