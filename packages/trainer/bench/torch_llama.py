#!/usr/bin/python3
"""The PyTorch side of `npm run bench:open-finetune`: a llama-architecture decoder written for the
benchmark (RMSNorm, rotate_half RoPE, grouped-query attention, SwiGLU MLP, tied embeddings, optional
q/k/v biases) with the shape of the model Crucible trains in the same run, trained on the same
random ids with AdamW, fully or with LoRA on q/k/v/o. Prints one JSON line: ms per step (mean after
one untimed step) and peak RSS. Never a dependency of Crucible itself.

Usage: torch_llama.py --hidden 576 --inter 1536 --heads 9 --kv-heads 3 --layers 30 --vocab 49152
       --theta 100000 --eps 1e-5 [--qkv-bias] --batch 4 --seq 512 --steps 2 [--lora 8]
       [--checkpoint] [--threads 2]
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as ckpt


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LoRALinear(nn.Module):
    """A frozen linear layer plus (x A^T B^T) * alpha / rank, PEFT's layout, B starting at zero."""

    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        self.A = nn.Parameter(torch.empty(rank, base.in_features).uniform_(-1 / math.sqrt(base.in_features), 1 / math.sqrt(base.in_features)))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x):
        return self.base(x) + F.linear(F.linear(x, self.A), self.B) * self.scale


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.h, self.hkv, self.hd = a.heads, a.kv_heads, a.hidden // a.heads
        self.input_layernorm = RMSNorm(a.hidden, a.eps)
        self.q_proj = nn.Linear(a.hidden, self.h * self.hd, bias=a.qkv_bias)
        self.k_proj = nn.Linear(a.hidden, self.hkv * self.hd, bias=a.qkv_bias)
        self.v_proj = nn.Linear(a.hidden, self.hkv * self.hd, bias=a.qkv_bias)
        self.o_proj = nn.Linear(self.h * self.hd, a.hidden, bias=False)
        self.post_attention_layernorm = RMSNorm(a.hidden, a.eps)
        self.gate_proj = nn.Linear(a.hidden, a.inter, bias=False)
        self.up_proj = nn.Linear(a.hidden, a.inter, bias=False)
        self.down_proj = nn.Linear(a.inter, a.hidden, bias=False)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        a = self.input_layernorm(x)
        q = self.q_proj(a).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(a).view(B, T, self.hkv, self.hd).transpose(1, 2)
        v = self.v_proj(a).view(B, T, self.hkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.h // self.hkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.hd)
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, self.h * self.hd)
        x = x + self.o_proj(y)
        m = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(m)) * self.up_proj(m))


class Decoder(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed_tokens = nn.Embedding(a.vocab, a.hidden)
        self.layers = nn.ModuleList([Block(a) for _ in range(a.layers)])
        self.norm = RMSNorm(a.hidden, a.eps)
        self.checkpoint = a.checkpoint
        hd = a.hidden // a.heads
        inv = 1.0 / (a.theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        ang = torch.outer(torch.arange(a.seq, dtype=torch.float64), inv)
        ang = torch.cat((ang, ang), dim=-1)
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)

    def forward(self, idx, targets):
        x = self.embed_tokens(idx)
        for layer in self.layers:
            if self.checkpoint:
                x = ckpt.checkpoint(layer, x, self.cos, self.sin, use_reentrant=False)
            else:
                x = layer(x, self.cos, self.sin)
        logits = F.linear(self.norm(x), self.embed_tokens.weight)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    p = argparse.ArgumentParser()
    for k in ("hidden", "inter", "heads", "kv-heads", "layers", "vocab", "batch", "seq", "steps"):
        p.add_argument(f"--{k}", type=int, required=True)
    p.add_argument("--theta", type=float, default=10000.0)
    p.add_argument("--eps", type=float, default=1e-5)
    p.add_argument("--qkv-bias", action="store_true")
    p.add_argument("--lora", type=int, default=0)
    p.add_argument("--checkpoint", action="store_true")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = Decoder(a)
    with torch.no_grad():
        for n, w in model.named_parameters():
            if w.dim() == 2:
                w.normal_(0, 0.02)
    if a.lora:
        for prm in model.parameters():
            prm.requires_grad_(False)
        for layer in model.layers:
            for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
                setattr(layer, name, LoRALinear(getattr(layer, name), a.lora, 2 * a.lora))
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-4 if a.lora else 5e-5, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    n = a.batch * a.seq * (a.steps + 2) + 1
    ids = (torch.arange(n, dtype=torch.int64) * 7919 + 13) % a.vocab
    per = a.batch * a.seq
    times = []
    losses = []
    for s in range(a.steps + 1):
        x = ids[s * per : (s + 1) * per].view(a.batch, a.seq)
        y = ids[s * per + 1 : (s + 1) * per + 1].view(a.batch, a.seq)
        t0 = time.perf_counter()
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ms = (time.perf_counter() - t0) * 1000
        losses.append(loss.item())
        if s > 0:
            times.append(ms)
    print(
        json.dumps(
            {
                "ms_per_step": sum(times) / len(times),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "losses": losses,
                "trainable": sum(q.numel() for q in params),
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
