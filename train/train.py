"""Behaviour cloning of a stepkv policy from a train/gen.ts dataset.

  python3 train/train.py --data DIR --regime carried|tempo --id gui-carried --ckpt CKPT.pt
        --log LOG.txt [--time-budget-s 240] [--max-epochs 100] [--batch 48] [--device cuda]

carried: whole episodes as one causal sequence (absolute positions), loss at each frame's last
position; augmented with random crops of the episode start, random position offsets and pruned
history (data.py: random subsets, StreamingLLM windows, whole frames, visual tokens).
tempo: frames unrolled one by one, each prefilled fresh (positions 0..S-1, no past KV); the bank
is the last N frames' pre-RoPE prefix K/V at the memory layers (gradients flow through it) with
the Frame-Gap Temporal Bias -beta * m_h * |t - tau| * alpha of memory/policies/tempofit.ts.
Each epoch logs the train loss and held-out teacher-forced accuracy per segment, memory-dependent
steps separately, with memory and without (memoryless: every frame alone).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import (EP_ROWS, carried_batch, encode_frames, load_dataset, tempo_batch)  # noqa: E402
from heads import gui_correct, gui_loss, robot_correct, robot_loss  # noqa: E402
from model import (GUI_SEGMENTS, CameraSpec, DecoderConfig, EncoderConfig, Policy, ReadingHead,  # noqa: E402
                   middle_third_layers, robot_segments, tempo_bias_per_gap)

TEMPO_FRAMES = 8


def build_policy(index: dict, regime: str, hidden: int, layers: int, instr_max: int) -> Policy:
    if index['domain'] == 'gui':
        cams = [CameraSpec('screen', 96, 128, 4)]  # 6 x 8 = 48 visual tokens
        segments = GUI_SEGMENTS
        proprio = 0
        stem = 'patch'  # see model.PatchStem
    else:
        cams = [CameraSpec(c['name'], c['height'], c['width'], int(math.log2(c['height'] // 4)))
                for c in index['cameras']]  # each camera -> 4 x 4 = 16 tokens
        segments = robot_segments(index['chunkTicks'], True)
        proprio = index['proprioSize']
        stem = 'conv'
    enc = EncoderConfig(hidden_size=hidden, cameras=cams, proprio_size=proprio, instruction_max_bytes=instr_max,
                        stem=stem)
    dec = DecoderConfig(hidden_size=hidden, layers=layers, heads=4, kv_heads=2, intermediate_size=3 * hidden,
                        action_size=sum(s[2] for s in segments),
                        tempo_layers=middle_third_layers(layers) if regime == 'tempo' else [])
    return Policy(enc, dec, segments)


class Runner:
    """Runs the policy over batches of episodes in either regime; returns per-frame logits."""

    def __init__(self, policy: Policy, ds, regime: str, device, amp: bool):
        self.p, self.ds, self.regime, self.device = policy, ds, regime, device
        enc = policy.encoder.c
        self.visual = enc.visual_tokens
        self.proprio_tokens = 1 if enc.proprio_size else 0
        self.amp = amp and str(device).startswith('cuda')
        self.bias_per_gap = tempo_bias_per_gap(policy.decoder.c.kv_heads).float().to(device)

    def autocast(self):
        if self.amp:
            return torch.autocast('cuda', dtype=torch.bfloat16)
        return torch.autocast('cpu', enabled=False)

    def carried(self, ids, rng, augment=True, mode=None):
        cb = carried_batch(self.ds, ids, rng, self.visual, self.proprio_tokens, self.device, augment=augment, mode=mode)
        with self.autocast():
            emb = encode_frames(self.p.encoder, self.ds, cb.frames)
            self.visual_out = (emb[:, :self.visual], cb.frames.rows)  # for the reading loss
            D = emb.shape[-1]
            # index_select, not x[idx]: the backward of advanced indexing is a sort-based
            # index_put_ that serialises on the many padding slots all pointing at row 0 (it was
            # over half the GPU step); index_select's backward is an atomic index_add_
            x = emb.reshape(-1, D).index_select(0, cb.gather.reshape(-1)).view(*cb.gather.shape, D)
            x = x * cb.valid.unsqueeze(-1)
            h, _ = self.p.decoder.forward_train(x, cb.positions, cb.allowed())
            logits = self.p.decoder.head(h.reshape(-1, D).index_select(0, cb.loss_index))
        return logits.float(), cb.loss_rows, cb.loss_weight

    def tempo(self, ids, use_bank=True):
        """The TempoFit regime, batched over frames: every frame of every episode is one row of a
        [B * n, S] prefill. A memory layer's prefix (pre-RoPE K/V before loading) depends only on
        the banks of the memory layers below it, so with m memory layers, pass k (k = 0..m-1, run
        up to memory layer k) yields exact prefixes for memory layer k from the banks of pass k-1,
        and a final pass with every bank exact gives the same logits as the frame-by-frame unroll
        (`tempo_sequential`; train/check_tempo_batched.py checks it) in m + 1 batched passes instead of
        n sequential ones. Gradients flow through the banks, as in the unroll."""
        tb = tempo_batch(self.ds, ids, self.visual, self.proprio_tokens, self.device)
        dec = self.p.decoder
        c = dec.c
        N = TEMPO_FRAMES
        with self.autocast():
            emb = encode_frames(self.p.encoder, self.ds, tb.frames)  # [B * n, S, D]
            self.visual_out = (emb[:, :self.visual], tb.frames.rows)  # for the reading loss
            B, n = tb.frame_valid.shape
            S = emb.shape[1]
            dev = self.device
            pos = torch.arange(S, device=dev).unsqueeze(0).expand(B * n, S)
            key_valid = tb.key_valid.repeat_interleave(n, 0)  # [B * n, S]
            causal = torch.ones(S, S, dtype=torch.bool, device=dev).tril()
            allowed = (causal.unsqueeze(0) & key_valid.unsqueeze(1)).unsqueeze(1)
            layers = c.tempo_layers
            if not use_bank or not layers:
                empty = [(emb.new_zeros(B * n, c.kv_heads, 0, c.head_dim).float(),) * 2 for _ in layers]
                h, _ = dec.forward_train(emb, pos, allowed, empty, emb.new_zeros(B * n, c.kv_heads, 1, 0).float())
            else:
                # slot j of frame f's bank holds frame f - N + j (gap N - j); earlier than the
                # episode's first frame, or instruction padding: -1e9 (zero weight)
                j = torch.arange(N, device=dev)
                f = torch.arange(n, device=dev)
                gap = (N - j).to(torch.float32)
                frame_ok = (f.view(n, 1) - N + j.view(1, N)) >= 0  # [n, N]
                ok = frame_ok.view(1, n, N, 1) & tb.key_valid.view(B, 1, 1, S)  # [B, n, N, S]
                per_gap = self.bias_per_gap.view(1, 1, -1, 1, 1) * gap.view(1, 1, 1, N, 1)  # [1, 1, Hkv, N, 1]
                mask = torch.where(ok, 0.0, -1e9).to(torch.float32).unsqueeze(2)  # [B, n, 1, N, S]
                bias = (per_gap + mask).reshape(B * n, c.kv_heads, 1, N * S)
                window = (f.view(n, 1) + j.view(1, N)).reshape(-1)  # padded frame index per slot

                def bank_of(t: torch.Tensor) -> torch.Tensor:
                    """[B * n, Hkv, S, Dh] prefixes -> [B * n, Hkv, N * S, Dh] banks (N frames back)."""
                    x = t.view(B, n, c.kv_heads, S, c.head_dim)
                    x = torch.cat([x.new_zeros(B, N, c.kv_heads, S, c.head_dim), x], 1)
                    w = x.index_select(1, window).view(B, n, N, c.kv_heads, S, c.head_dim)
                    return w.permute(0, 1, 3, 2, 4, 5).reshape(B * n, c.kv_heads, N * S, c.head_dim)

                banks = None
                for k in range(len(layers)):
                    _, prefixes = dec.forward_train(emb, pos, allowed, banks, bias if banks else None, upto=layers[k])
                    exact = [(bank_of(kk), bank_of(vv)) for kk, vv in prefixes]
                    # memory layers above k have no prefix yet: their bank is not read before
                    # `upto` stops the pass, so any tensor of the right shape serves as a stand-in
                    banks = exact + (banks[len(exact):] if banks else
                                     [exact[-1]] * (len(layers) - len(exact)))
                h, _ = dec.forward_train(emb, pos, allowed, banks, bias)
            # last real token of every frame, by index_select (cheaper backward than h[b, :, t])
            flat = ((torch.arange(B, device=dev).view(B, 1) * n + torch.arange(n, device=dev).view(1, n)) * S
                    + tb.last_index.view(B, 1)).reshape(-1)
            last = h.reshape(B * n * S, -1).index_select(0, flat).view(B, n, -1)  # [B, n, D]
            logits = dec.head(last).float()
        valid = tb.frame_valid.reshape(-1)
        return logits.reshape(B * n, -1)[valid], tb.rows.reshape(-1)[valid], torch.ones(int(valid.sum()), device=self.device)

    def tempo_sequential(self, ids, use_bank=True):
        """The TempoFit regime frame by frame (the reference for `tempo`)."""
        tb = tempo_batch(self.ds, ids, self.visual, self.proprio_tokens, self.device)
        dec = self.p.decoder
        with self.autocast():
            emb = encode_frames(self.p.encoder, self.ds, tb.frames)
            B, n = tb.frame_valid.shape
            S, D = emb.shape[1], emb.shape[2]
            emb = emb.view(B, n, S, D)
            pos = torch.arange(S, device=self.device).unsqueeze(0).expand(B, S)
            causal = torch.ones(S, S, dtype=torch.bool, device=self.device).tril()
            allowed = (causal.unsqueeze(0) & tb.key_valid.unsqueeze(1)).unsqueeze(1)
            slot_mask = torch.where(tb.key_valid, 0.0, -1e9).to(torch.float32)  # [B, S]
            history: list[list[tuple]] = []
            logits = []
            for f in range(n):
                frames = history[-TEMPO_FRAMES:] if use_bank else []
                if frames:
                    bank = [(torch.cat([h[m][0] for h in frames], 2), torch.cat([h[m][1] for h in frames], 2))
                            for m in range(len(dec.c.tempo_layers))]
                    gaps = torch.arange(len(frames), 0, -1, device=self.device, dtype=torch.float32)  # oldest first
                    per_frame = self.bias_per_gap.view(1, -1, 1, 1) * gaps.view(1, 1, -1, 1)  # [1, Hkv, n_f, 1]
                    bias = (per_frame + slot_mask.view(B, 1, 1, S)).reshape(B, -1, 1, len(frames) * S)
                else:
                    bank = [(emb.new_zeros(B, dec.c.kv_heads, 0, dec.c.head_dim).float(),) * 2
                            for _ in dec.c.tempo_layers]
                    bias = emb.new_zeros(B, dec.c.kv_heads, 1, 0).float()
                h, prefixes = dec.forward_train(emb[:, f], pos, allowed, bank, bias)
                history.append(prefixes)
                last = h[torch.arange(B, device=self.device), tb.last_index]
                logits.append(dec.head(last))
        logits = torch.stack(logits, 1).float()  # [B, n, A]
        valid = tb.frame_valid.reshape(-1)
        return logits.reshape(B * n, -1)[valid], tb.rows.reshape(-1)[valid], torch.ones(int(valid.sum()), device=self.device)

    def run(self, ids, rng, augment=True, memoryless=False):
        if self.regime == 'carried':
            return self.carried(ids, rng, augment, mode='memoryless' if memoryless else None)
        return self.tempo(ids, use_bank=not memoryless)


def loss_fn(ds, logits, rows, weight, memory_weight, digit_weight=1.0):
    mem = ds.memory[rows].float()
    w = weight * (1.0 + (memory_weight - 1.0) * mem)
    if ds.domain == 'gui':
        return gui_loss(logits, ds.targets[rows], w, digit_weight)
    return robot_loss(logits, ds.targets[rows], w, int(ds.index['chunkTicks']))


@torch.no_grad()
def evaluate(runner: Runner, ds, ids, batch: int, memoryless: bool) -> dict:
    runner.p.eval()
    rng = np.random.default_rng(0)
    sums: dict[str, list[float]] = {}
    for k in range(0, len(ids), batch):
        logits, rows, _ = runner.run(ids[k:k + batch], rng, augment=False, memoryless=memoryless)
        tg = ds.targets[rows]
        mem = ds.memory[rows]
        if ds.domain == 'gui':
            res = gui_correct(logits, tg)
            applies = res.pop('_applies')
            names = ['action', 'type', 'click', 'digits', 'scroll', 'digit0', 'digit1', 'digit2', 'digit3']
            for i, name in enumerate(names):
                for tag, sel in (('all', torch.ones_like(mem)), ('mem', mem)):
                    m = applies[i] & sel
                    s = sums.setdefault(f'{tag}/{name}', [0.0, 0.0])
                    s[0] += float((res[name] & m).sum())
                    s[1] += float(m.sum())
        else:
            res = robot_correct(logits, tg, int(ds.index['chunkTicks']))
            mse = res.pop('_mse')
            for tag, sel in (('all', torch.ones_like(mem)), ('mem', mem)):
                for name, ok in res.items():
                    s = sums.setdefault(f'{tag}/{name}', [0.0, 0.0])
                    s[0] += float((ok & sel).sum())
                    s[1] += float(sel.sum())
                s = sums.setdefault(f'{tag}/mse', [0.0, 0.0])
                s[0] += float((mse * sel).sum())
                s[1] += float(sel.sum())
    runner.p.train()
    return {k: (v[0] / v[1] if v[1] else None) for k, v in sums.items()}


def fmt(metrics: dict) -> str:
    return ' '.join(f'{k}={v:.3f}' for k, v in sorted(metrics.items()) if v is not None)


def git_commit() -> str:
    try:
        return subprocess.check_output(['git', 'rev-parse', 'HEAD'], text=True,
                                       cwd=os.path.dirname(os.path.abspath(__file__))).strip()
    except Exception:
        return 'unknown'


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', required=True)
    ap.add_argument('--regime', choices=['carried', 'tempo'], required=True)
    ap.add_argument('--id', required=True)
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--log', required=True)
    ap.add_argument('--time-budget-s', type=float, default=240)
    ap.add_argument('--max-epochs', type=int, default=1000)
    ap.add_argument('--max-steps', type=int, default=0, help='stop after this many optimizer steps (0: no limit)')
    ap.add_argument('--batch', type=int, default=0, help='episodes per batch (0: gui 96, robot 128)')
    ap.add_argument('--eval-episodes', type=int, default=400)
    ap.add_argument('--lr', type=float, default=1.5e-3)
    ap.add_argument('--hidden', type=int, default=128)
    ap.add_argument('--layers', type=int, default=4)
    ap.add_argument('--memory-weight', type=float, default=3.0, help='loss weight of memory-dependent steps')
    ap.add_argument('--digit-weight', type=float, default=6.0, help='GUI: loss weight of the typed-digit segments')
    ap.add_argument('--reading-weight', type=float, default=1.0,
                    help='GUI: weight of the auxiliary reading loss (model.ReadingHead; 0 = off)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--init', default='', help='start from this checkpoint\'s weights (same architecture); '
                    'a fresh optimizer and schedule (continued training across device calls)')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--no-amp', action='store_true')
    ap.add_argument('--warmup', type=int, default=100, help='linear warm-up steps')
    ap.add_argument('--log-every', type=int, default=100, help='log the running loss every this many steps')
    args = ap.parse_args(argv)

    t_start = time.time()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    os.makedirs(os.path.dirname(os.path.abspath(args.log)), exist_ok=True)
    log = open(args.log, 'w')

    def say(msg: str, also_stdout: bool = False):
        log.write(msg + '\n')
        log.flush()
        if also_stdout:
            print(f'[{args.id}] {msg}', flush=True)

    ds = load_dataset(args.data, device)
    # large batches: these small models are launch-bound on a GPU, so a step costs about the same
    # for 48 or 128 episodes
    args.batch = args.batch or (96 if ds.domain == 'gui' else 128)
    train_ids, held_ids = ds.split()
    held_ids = held_ids[:args.eval_episodes]
    instr_max = max(96, int(ds.instructions.shape[1]))
    policy = build_policy(ds.index, args.regime, args.hidden, args.layers, instr_max).to(device)
    if args.init:
        init = torch.load(args.init, map_location=device, weights_only=False)  # our own checkpoint (metrics hold a TorchVersion)
        policy.load_state_dict(init['state_dict'])
        say(f'init: weights from {args.init} ({init["metrics"]["steps"]} steps, '
            f'{init["metrics"]["train_seconds"]} s before)', True)
    runner = Runner(policy, ds, args.regime, device, amp=not args.no_amp)
    n_params = sum(p.numel() for p in policy.parameters())
    say(f'command: {" ".join(sys.argv)}')
    say(f'data: {args.data} domain={ds.domain} episodes={len(ds.episodes)} frames={ds.rows} '
        f'train={len(train_ids)} held-out={len(held_ids)} memory-frames={int(ds.memory.sum())}')
    say(f'model: {args.id} regime={args.regime} params={n_params} decoder={policy.decoder.c.to_dict()} '
        f'visual_tokens={policy.encoder.c.visual_tokens} device={device} amp={runner.amp}', True)

    reading = None
    if ds.glyphs is not None and args.reading_weight > 0:
        cam = policy.encoder.c.cameras[0]
        cells = (cam.height // cam.grid[0]) // 8
        reading = ReadingHead(policy.encoder, cells).to(device)
        say(f'reading loss: weight {args.reading_weight}, {cells}x{cells} cells per visual token', True)
    params = list(policy.parameters()) + (list(reading.parameters()) if reading else [])
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, betas=(0.9, 0.95))
    read_accs: list[float] = []
    warmup = args.warmup
    step = 0
    metrics: dict = {}
    metrics_nomem: dict = {}
    epoch = 0
    budget = args.time_budget_s
    t_train = time.time()
    done = False
    while epoch < args.max_epochs and not done:
        epoch += 1
        order = rng.permutation(train_ids)
        losses = []
        t_epoch = time.time()
        for k in range(0, len(order), args.batch):
            frac = min(1.0, (time.time() - t_train) / budget)
            if args.max_steps:
                frac = max(frac, step / args.max_steps)
            lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
            for g in opt.param_groups:
                g['lr'] = lr
            logits, rows, weight = runner.run(order[k:k + args.batch], rng)
            loss = loss_fn(ds, logits, rows, weight, args.memory_weight, args.digit_weight)
            if reading is not None:
                visual, vrows = runner.visual_out
                r_loss, r_acc = reading.loss(visual, ds.glyphs.index_select(0, vrows), policy.encoder.c.cameras[0].grid)
                loss = loss + args.reading_weight * r_loss
                read_accs.append(float(r_acc))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            losses.append(float(loss))
            step += 1
            if step % args.log_every == 0:
                read = f' reading acc {np.mean(read_accs[-args.log_every:]):.3f}' if read_accs else ''
                say(f'step {step} loss {np.mean(losses[-args.log_every:]):.4f}{read} lr {lr:.2e} t {time.time() - t_train:.0f}s')
            if time.time() - t_train >= budget or (args.max_steps and step >= args.max_steps):
                done = True
                break
        metrics = evaluate(runner, ds, held_ids, args.batch, memoryless=False)
        metrics_nomem = evaluate(runner, ds, held_ids, args.batch, memoryless=True)
        say(f'epoch {epoch} steps {step} loss {np.mean(losses):.4f} lr {lr:.2e} '
            f'epoch_s {time.time() - t_epoch:.1f} | held-out memory: {fmt(metrics)} | '
            f'memoryless: {fmt({k: v for k, v in metrics_nomem.items() if k.startswith("mem/")})}',
            also_stdout=epoch % 5 == 1 or done)
    summary = {
        'epochs': epoch, 'steps': step, 'train_seconds': round(time.time() - t_train, 1),
        'final_loss': float(np.mean(losses)) if losses else None,
        'heldout': metrics, 'heldout_memoryless': metrics_nomem,
    }
    say('final: ' + json.dumps(summary))
    short = lambda m, k: f'{m[k]:.3f}' if m.get(k) is not None else 'n/a'
    say(f'summary {args.id}: {epoch} epochs, {step} steps, {summary["train_seconds"]} s, loss {summary["final_loss"]:.4f} | '
        f'held-out action acc {short(metrics, "all/action")}, memory steps {short(metrics, "mem/action")} '
        f'(memoryless {short(metrics_nomem, "mem/action")})', True)
    torch.save({
        'id': args.id, 'regime': args.regime,
        'encoder': policy.encoder.c.to_dict(), 'decoder': policy.decoder.c.to_dict(),
        'segments': policy.segments, 'state_dict': policy.state_dict(),
        'provenance': {
            'command': ' '.join(sys.argv), 'commit': git_commit(), 'dataset': os.path.abspath(args.data),
            'episodes': int(len(ds.episodes)), 'frames': int(ds.rows), 'train_episodes': int(len(train_ids)),
            'heldout_episodes': int(len(held_ids)), 'seed': args.seed, 'torch': torch.__version__,
            'device': str(device), 'total_seconds': round(time.time() - t_start, 1), 'init': args.init or None,
        },
        'metrics': summary,
        'dataset_index': {k: v for k, v in ds.index.items() if k != 'shards'},
    }, args.ckpt)
    log.close()


if __name__ == '__main__':
    main()
