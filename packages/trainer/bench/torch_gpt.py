#!/usr/bin/python3
"""The PyTorch side of `npm run bench:vs-torch`: a small GPT written for the benchmark with the same
shape as Crucible's (pre-LayerNorm blocks, fused q/k/v projection, tanh GELU MLP, tied embeddings,
biases), trained on the same character-level text with the same AdamW, warmup + cosine schedule,
clipping and evaluation. Prints one JSON line of results. Never a dependency of Crucible itself.

Usage: torch_gpt.py --data FILE --layers 4 --heads 4 --dmodel 128 --block 64 --batch 12 --iters 2000
       [--threads 1] [--eval-interval 250] [--eval-batches 20] [--lora RANK]
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank term (x A B) * alpha / rank, B starting at zero."""

    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        self.A = nn.Parameter(torch.empty(base.in_features, rank).uniform_(-1 / math.sqrt(base.in_features), 1 / math.sqrt(base.in_features)))
        self.B = nn.Parameter(torch.zeros(rank, base.out_features))

    def forward(self, x):
        return self.base(x) + (x @ self.A @ self.B) * self.scale


class Block(nn.Module):
    def __init__(self, d, nh):
        super().__init__()
        self.nh = nh
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        hs = C // self.nh
        q = q.view(B, T, self.nh, hs).transpose(1, 2)
        k = k.view(B, T, self.nh, hs).transpose(1, 2)
        v = v.view(B, T, self.nh, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        att = att.masked_fill(mask[:, :, :T, :T] == 0, float('-inf'))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate='tanh'))


class GPT(nn.Module):
    def __init__(self, vocab, layers, heads, d, block):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(block, d)
        self.h = nn.ModuleList([Block(d, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.register_buffer('mask', torch.tril(torch.ones(block, block)).view(1, 1, block, block))
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith('c_proj.weight') or name.endswith('mlp_proj.weight') else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith('bias'):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for block in self.h:
            x = block(x, self.mask)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(B * T, -1), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    for k, d in [('layers', 4), ('heads', 4), ('dmodel', 128), ('block', 64), ('batch', 12), ('iters', 2000), ('threads', 1),
                 ('eval-interval', 250), ('eval-batches', 20), ('warmup', 100), ('decay', 2000), ('lora', 0)]:
        ap.add_argument('--' + k, type=int, default=d)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--min-lr', type=float, default=1e-4)
    ap.add_argument('--data', required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1337)

    text = open(a.data, encoding='utf-8').read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text])
    n = int(0.9 * len(ids))
    train, val = ids[:n], ids[n:]

    def batch(src, g):
        ix = torch.randint(len(src) - a.block - 1, (a.batch,), generator=g)
        return torch.stack([src[i:i + a.block] for i in ix]), torch.stack([src[i + 1:i + 1 + a.block] for i in ix])

    model = GPT(len(chars), a.layers, a.heads, a.dmodel, a.block)
    if a.lora > 0:
        # LoRA on the attention projections (as Crucible's default targets); the base is frozen
        for p in model.parameters():
            p.requires_grad_(False)
        for block in model.h:
            block.c_attn = LoRALinear(block.c_attn, a.lora, 2 * a.lora)
            block.c_proj = LoRALinear(block.c_proj, a.lora, 2 * a.lora)
    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.dim() >= 2]
    no_decay = [p for p in trainable if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': no_decay, 'weight_decay': 0.0}], lr=a.lr, betas=(0.9, 0.99), eps=1e-8)

    def lr_at(it):
        if it < a.warmup:
            return a.lr * (it + 1) / (a.warmup + 1)
        r = min(1.0, (it - a.warmup) / max(1, a.decay - a.warmup))
        return a.min_lr + 0.5 * (1 + math.cos(math.pi * r)) * (a.lr - a.min_lr)

    g_train = torch.Generator().manual_seed(1)
    g_val = torch.Generator().manual_seed(2)
    val_batches = [batch(val, g_val) for _ in range(a.eval_batches)]

    def evaluate():
        model.eval()
        with torch.no_grad():
            loss = sum(model(x, y).item() for x, y in val_batches) / len(val_batches)
        model.train()
        return loss

    times, evals = [], []
    t_start = time.perf_counter()
    for it in range(a.iters):
        if a.eval_interval > 0 and it % a.eval_interval == 0:
            evals.append([it, evaluate()])
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group['lr'] = lr_at(it)
        x, y = batch(train, g_train)
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        times.append((time.perf_counter() - t0) * 1000)
    if a.eval_interval > 0:
        evals.append([a.iters, evaluate()])
    wall = time.perf_counter() - t_start
    print(json.dumps({
        'impl': 'pytorch',
        'version': torch.__version__,
        'threads': a.threads,
        'params': sum(p.numel() for p in model.parameters()),
        'ms_per_iter': sorted(times)[len(times) // 2],
        'times': times,
        'wall_s': wall,
        'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        'evals': evals,
    }))


if __name__ == '__main__':
    main()
