"""Behaviour-cloning data: loads a train/gen.ts dataset (index.json + shard-k/*.npy) and builds
batches for the two regimes.

carried: an episode is one causal sequence of its frames' prefixes [visual..., proprio?,
instruction...] at absolute positions; a per-token eviction frame simulates memory pruning
(a key is visible to the queries of frame f iff it is not evicted by f), so one boolean mask
[B, T, T] covers full memory, random subsets, StreamingLLM windows, whole-frame drops,
visual-token pruning and memories smaller than one frame (the previous frame's last tokens).

tempo: frames unrolled one by one (train.py), each prefilled fresh at positions 0..S-1; the batch
here gives per-frame rows and prefix layouts.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import torch

EP_FIRST, EP_ROWS, EP_TASK, EP_SUCCESS, EP_RANDOM, EP_INSTR = range(6)
NEVER = 1 << 20


@dataclass
class Dataset:
    index: dict
    domain: str
    images: list[torch.Tensor]  # per camera uint8 [rows, H, W, 3]
    proprio: torch.Tensor | None  # [rows, P] float32
    targets: torch.Tensor  # gui: int64 [rows, 8]; robot: float32 [rows, K, 3]
    memory: torch.Tensor  # bool [rows]
    episodes: np.ndarray  # int64 [E, 6], firstRow global
    instructions: np.ndarray  # uint8 [E, Lmax]
    cameras: list[dict]
    memory_np: np.ndarray  # bool [rows], host copy
    glyphs: torch.Tensor | None = None  # gui: uint8 [rows, 12, 16] glyph class per 8x8 cell (aux target)

    @property
    def rows(self) -> int:
        return int(self.memory.shape[0])

    def split(self, every: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """Episode ids: held out = every `every`-th episode, the rest train."""
        ids = np.arange(len(self.episodes))
        held = ids % every == every - 1
        return ids[~held], ids[held]


def load_dataset(path: str, device: str | torch.device = 'cpu') -> Dataset:
    index = json.load(open(os.path.join(path, 'index.json')))
    domain = index['domain']
    cams = index['cameras']
    parts: dict[str, list[np.ndarray]] = {}
    eps, instrs = [], []
    offset = 0
    for shard in index['shards']:
        d = os.path.join(path, shard['dir'])
        load = lambda name: np.load(os.path.join(d, shard['files'][name]['file']))
        ep = load('episodes').astype(np.int64)
        ep[:, EP_FIRST] += offset
        eps.append(ep)
        instrs.append(load('instructions'))
        names = ['targets', 'memory'] + (['frames'] + (['glyphs'] if 'glyphs' in shard['files'] else [])
                                         if domain == 'gui' else
                                         [f"frames.{c['name']}" for c in cams] + ['proprio'])
        for n in names:
            parts.setdefault(n, []).append(load(n))
        offset += shard['rows']
    lmax = max(i.shape[1] for i in instrs)
    instructions = np.concatenate([np.pad(i, ((0, 0), (0, lmax - i.shape[1]))) for i in instrs])
    cat = lambda n: np.concatenate(parts[n])
    to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)
    if domain == 'gui':
        images = [to(cat('frames'))]
        proprio = None
        targets = to(cat('targets').astype(np.int64))
    else:
        images = [to(cat(f"frames.{c['name']}")) for c in cams]
        proprio = to(cat('proprio').astype(np.float32))
        targets = to(cat('targets').astype(np.float32))
    memory_np = cat('memory').astype(bool)
    memory = to(memory_np)
    glyphs = to(cat('glyphs')) if 'glyphs' in parts and len(parts['glyphs']) == len(index['shards']) else None
    return Dataset(index, domain, images, proprio, targets, memory, np.concatenate(eps), instructions, cams,
                   memory_np, glyphs)


@dataclass
class FrameBatch:
    """Rows of frames to encode: images per camera, proprio, instruction bytes (padded to L)."""
    rows: torch.Tensor  # int64 [F]
    instruction: torch.Tensor  # int64 [F, L]
    instr_len: torch.Tensor  # int64 [F]


def frame_batch(ds: Dataset, rows: np.ndarray, episode_of_row: np.ndarray, device) -> FrameBatch:
    lens = ds.episodes[episode_of_row, EP_INSTR]
    L = int(lens.max())
    instr = ds.instructions[episode_of_row, :L].astype(np.int64)
    return FrameBatch(torch.from_numpy(rows).to(device), torch.from_numpy(instr).to(device),
                      torch.from_numpy(lens).to(device))


def encode_frames(encoder, ds: Dataset, fb: FrameBatch) -> torch.Tensor:
    """inputs_embeds of each frame [F, V + p + L, D] (instruction padded to the batch's L)."""
    images = [img.index_select(0, fb.rows) for img in ds.images]
    proprio = ds.proprio.index_select(0, fb.rows) if ds.proprio is not None else None
    return encoder(images, proprio, fb.instruction)


# ---------------------------------------------------------------------------------------------
# carried regime


@dataclass
class CarriedBatch:
    frames: FrameBatch
    gather: torch.Tensor  # int64 [B, T] index into the flattened [F * S_frame] encoded tokens
    valid: torch.Tensor  # bool [B, T]
    frame_id: torch.Tensor  # int64 [B, T] frame index within the (cropped) sequence
    evict_at: torch.Tensor  # int64 [B, T] first frame whose queries no longer see the token
    positions: torch.Tensor  # int64 [B, T]
    loss_index: torch.Tensor  # int64 [N] flat index b * T + t of each frame's last token
    loss_rows: torch.Tensor  # int64 [N] dataset row of that frame
    loss_weight: torch.Tensor  # float32 [N] (0 for memory steps whose history was cropped)
    mode_names: list[str]

    def allowed(self) -> torch.Tensor:
        """[B, 1, T, T] bool: key j visible to query i."""
        T = self.valid.shape[1]
        idx = torch.arange(T, device=self.valid.device)
        causal = idx.view(1, T, 1) >= idx.view(1, 1, T)
        keep = self.evict_at.unsqueeze(1) > self.frame_id.unsqueeze(2)
        return (causal & keep & self.valid.unsqueeze(1)).unsqueeze(1)


PRUNE_MODES = ['full', 'random', 'window', 'frames', 'visual', 'tail']


def carried_batch(ds: Dataset, episode_ids: np.ndarray, rng: np.random.Generator, visual_tokens: int,
                  proprio_tokens: int, device, augment: bool = True, prune_probs=None,
                  crop_prob: float = 0.2, max_offset: int = 4096, mode: str | None = None) -> CarriedBatch:
    """One batch of whole episodes as causal sequences; see the module note for the masking."""
    prune_probs = prune_probs or [0.3, 0.15, 0.15, 0.1, 0.15, 0.15]
    rows, row_ep = [], []
    per_ep = []
    for e in episode_ids:
        first, n, L = (int(ds.episodes[e, k]) for k in (EP_FIRST, EP_ROWS, EP_INSTR))
        crop = int(rng.integers(1, n)) if augment and n > 1 and rng.random() < crop_prob else 0
        S = visual_tokens + proprio_tokens + L
        per_ep.append((e, first, n, crop, S, L))
        rows.extend(range(first + crop, first + n))
        row_ep.extend([e] * (n - crop))
    rows_np = np.array(rows, dtype=np.int64)
    fb = frame_batch(ds, rows_np, np.array(row_ep, dtype=np.int64), device)
    L_b = int(fb.instruction.shape[1])
    S_frame = visual_tokens + proprio_tokens + L_b
    T = max((n - crop) * S for (_, _, n, crop, S, _) in per_ep)
    B = len(per_ep)
    gather = np.zeros((B, T), np.int64)
    valid = np.zeros((B, T), bool)
    frame_id = np.zeros((B, T), np.int64)
    evict = np.full((B, T), NEVER, np.int64)
    positions = np.zeros((B, T), np.int64)
    loss_index, loss_rows, loss_weight, modes = [], [], [], []
    frame_cursor = 0
    mem = ds.memory_np
    for b, (e, first, n, crop, S, L) in enumerate(per_ep):
        nf = n - crop
        tok = np.arange(S)
        # token t of frame f: encoded row (frame_cursor + f), token t (instruction padding is last)
        idx = (frame_cursor + np.arange(nf))[:, None] * S_frame + tok[None, :]
        gather[b, :nf * S] = idx.reshape(-1)
        valid[b, :nf * S] = True
        fid = np.repeat(np.arange(nf), S)
        frame_id[b, :nf * S] = fid
        offset = int(rng.integers(0, max_offset)) if augment and rng.random() < 0.5 else 0
        positions[b, :nf * S] = offset + crop * S + np.arange(nf * S)
        name = PRUNE_MODES[rng.choice(len(PRUNE_MODES), p=prune_probs)] if augment else (mode or 'full')
        modes.append(name)
        evict[b, :nf * S] = eviction(name, rng, nf, S, visual_tokens, fid)
        for f in range(nf):
            loss_index.append(b * T + f * S + S - 1)
            r = first + crop + f
            loss_rows.append(r)
            loss_weight.append(0.0 if (crop > 0 and mem[r]) else 1.0)
        frame_cursor += nf
    t = lambda a: torch.from_numpy(a).to(device)
    return CarriedBatch(fb, t(gather), t(valid), t(frame_id), t(evict), t(positions),
                        t(np.array(loss_index, np.int64)), t(np.array(loss_rows, np.int64)),
                        t(np.array(loss_weight, np.float32)), modes)


def eviction(mode: str, rng: np.random.Generator, nf: int, S: int, visual: int, fid: np.ndarray) -> np.ndarray:
    """Per token of an nf-frame sequence (S tokens per frame), the first frame whose queries no
    longer see it (NEVER = kept). Evictions are permanent, as in a pruned KV cache."""
    n = nf * S
    out = np.full(n, NEVER, np.int64)
    if mode == 'full' or nf == 1:
        return out
    if mode == 'memoryless':  # every frame alone (no carried memory at all)
        return fid + 1
    later = lambda: fid + 1 + np.floor(rng.random(n) * (nf - fid)).astype(np.int64)
    if mode == 'random':  # random subsets (SnapKV/H2O-like score noise)
        drop = rng.random(n) < rng.uniform(0.2, 0.7)
        out[drop] = later()[drop]
    elif mode == 'window':  # StreamingLLM: 4 sinks + the last W tokens before the current frame
        W = int(rng.integers(S, 4 * S + 1))
        j = np.arange(n)
        out = (j + W) // S + 1
        out[:4] = NEVER
    elif mode == 'frames':  # whole earlier frames dropped at a random later step
        frame_drop = rng.random(nf) < 0.35
        frame_at = np.arange(nf) + 1 + np.floor(rng.random(nf) * (nf - np.arange(nf))).astype(np.int64)
        out = np.where(frame_drop[fid], frame_at[fid], NEVER)
    elif mode == 'visual':  # GUI-KV-like: visual tokens of past frames pruned, text kept
        is_visual = (np.arange(n) % S) < visual
        drop = is_visual & (rng.random(n) < rng.uniform(0.3, 0.9))
        out[drop] = later()[drop]
    elif mode == 'tail':  # a memory smaller than one frame (GUI-KV at 10 %): each frame sees the
        # previous frame's last w tokens (the window a scorer always keeps) and a few others
        w = int(rng.integers(4, 17))
        out = fid + 1
        last = (np.arange(n) % S) >= S - w
        out[last] = fid[last] + 2
        extra = rng.random(n) < rng.uniform(0.0, 0.4)
        lifetime = fid + 1 + rng.geometric(rng.uniform(0.3, 0.8), n)  # ≥ fid + 2
        out[extra] = np.maximum(out[extra], lifetime[extra])
    return out


# ---------------------------------------------------------------------------------------------
# tempo regime


@dataclass
class TempoBatch:
    frames: FrameBatch  # rows [B * n_max] (frame f of episode b at b * n_max + f; padding repeats)
    n_max: int
    frame_valid: torch.Tensor  # bool [B, n_max]
    key_valid: torch.Tensor  # bool [B, S_frame] (instruction padding masked)
    last_index: torch.Tensor  # int64 [B] last real token of each episode's frames
    rows: torch.Tensor  # int64 [B, n_max] dataset rows (padding repeats the last)


def tempo_batch(ds: Dataset, episode_ids: np.ndarray, visual_tokens: int, proprio_tokens: int,
                device) -> TempoBatch:
    n_max = int(ds.episodes[episode_ids, EP_ROWS].max())
    B = len(episode_ids)
    rows = np.zeros((B, n_max), np.int64)
    fvalid = np.zeros((B, n_max), bool)
    for b, e in enumerate(episode_ids):
        first, n = int(ds.episodes[e, EP_FIRST]), int(ds.episodes[e, EP_ROWS])
        rows[b, :n] = first + np.arange(n)
        rows[b, n:] = first + n - 1
        fvalid[b, :n] = True
    fb = frame_batch(ds, rows.reshape(-1), np.repeat(episode_ids, n_max), device)
    L_b = int(fb.instruction.shape[1])
    lens = ds.episodes[episode_ids, EP_INSTR]
    S_frame = visual_tokens + proprio_tokens + L_b
    key_valid = np.arange(S_frame)[None, :] < (visual_tokens + proprio_tokens + lens)[:, None]
    last = visual_tokens + proprio_tokens + lens - 1
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)
    return TempoBatch(fb, n_max, t(fvalid), t(key_valid), t(last.astype(np.int64)), t(rows))
