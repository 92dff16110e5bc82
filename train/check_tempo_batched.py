"""Checks that the batched TempoFit unroll (train.Runner.tempo) gives the frame-by-frame unroll's
(Runner.tempo_sequential) logits and gradients, on a dataset from train/gen.ts, in float32.

  python3 train/check_tempo_batched.py --data DIR [--episodes 6] [--layers 4] [--hidden 32]

Exits 1 when the worst relative error exceeds 1e-4 (max|a - b| / max(1, max|b|)).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import load_dataset  # noqa: E402
from train import Runner, build_policy  # noqa: E402


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / max(1.0, float(b.abs().max())))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', required=True)
    ap.add_argument('--episodes', type=int, default=6)
    ap.add_argument('--layers', type=int, default=4)
    ap.add_argument('--hidden', type=int, default=32)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    ds = load_dataset(args.data, 'cpu')
    policy = build_policy(ds.index, 'tempo', args.hidden, args.layers, max(96, int(ds.instructions.shape[1])))
    runner = Runner(policy, ds, 'tempo', 'cpu', amp=False)
    # episodes of different lengths, so padding frames and empty bank slots are exercised
    ids = np.argsort(-ds.episodes[:, 1])[: args.episodes // 2].tolist() + list(range(args.episodes - args.episodes // 2))
    ids = np.array(ids)
    worst = 0.0
    logits_of = {}
    for use_bank in (True, False):
        outs = []
        for fn in (runner.tempo, runner.tempo_sequential):
            policy.zero_grad()
            logits, rows, _ = fn(ids, use_bank=use_bank)
            (logits * torch.linspace(-1, 1, logits.shape[1])).sum().backward()
            grads = torch.cat([p.grad.reshape(-1) for p in policy.parameters() if p.grad is not None])
            outs.append((logits.detach(), rows, grads))
        (la, ra, ga), (lb, rb, gb) = outs
        logits_of[use_bank] = la
        assert torch.equal(ra, rb), 'row order differs'
        e_logits, e_grad = rel_err(la, lb), rel_err(ga, gb)
        worst = max(worst, e_logits, e_grad)
        print(f'check_tempo_batched bank={use_bank}: {la.shape[0]} frames, logits rel err {e_logits:.2e}, '
              f'grad rel err {e_grad:.2e}', flush=True)
    # the check means something only if the bank changes the logits
    effect = rel_err(logits_of[True], logits_of[False])
    print(f'check_tempo_batched: bank vs no bank rel diff {effect:.2e} (must be > 1e-3)')
    ok = worst <= 1e-4 and effect > 1e-3
    print(f'check_tempo_batched: worst {worst:.2e} ({"ok" if ok else "FAILED"})')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
