"""stepkv policies in torch: a prefix encoder (frames, proprio, instruction bytes -> inputs_embeds)
and a Llama-style decoder with the model contract's ports (ARCHITECTURE.md "Model contract").

The decoder follows models/decoder/graph.ts + tempo.ts and test/reference/decoder64.ts exactly:
- RMSNorm x / sqrt(mean(x^2) + eps) * gain; pre-norm blocks; SwiGLU MLP down(silu(gate) * up).
- RoPE rotate-half (x*cos + cat(-x2, x1)*sin), angles position * base^(-2i/Dh) in float64.
- GQA: query head h reads KV head h // (H / Hkv).
- key j may be attended by query i iff j <= P + i and attention_mask[j] != 0; masked scores are
  MASKED_SCORE = -1e9 (finite), then softmax.
- attn_window.{l} [B, Hkv, T]: probabilities of the last obs_window queries, summed over those
  queries and over the query heads of each KV group; attn_total.{l} the same over all S queries.
- hidden_norm.{l} [B, S]: L2 norm of the layer's normed attention input (after the gain).
- TempoFit at memory layers: K-to-K retrieval from the bank of pre-RoPE K/V with the bias and an
  implicit null slot (score -1e8, zero key/value), residual loading and the norm-preserving rescale
  (eps 1e-6), before RoPE; tempo_prefix.{l} = this step's pre-RoPE K/V (before loading).
Works with torch 1.13 and 2.x (scaled_dot_product_attention is used for training when present).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

MASKED_SCORE = -1e9
TEMPO_NULL_SCORE = -1e8
TEMPO_EPS = 1e-6


def middle_third_layers(layers: int) -> list[int]:
    """TempoFit's default memory layers, as models/decoder/config.ts middleThirdLayers."""
    first = layers // 3
    end = -(-2 * layers // 3)
    return list(range(first, end))


def alibi_slopes(kv_heads: int) -> list[float]:
    """m_h = 2^(-8(h+1)/Hkv), as memory/policies/tempofit.ts alibiSlopes."""
    return [2.0 ** (-8.0 * (h + 1) / kv_heads) for h in range(kv_heads)]


def tempo_bias_per_gap(kv_heads: int, beta: float | None = None, alpha: float = 1.0) -> torch.Tensor:
    """Frame-Gap Temporal Bias per frame of gap: -beta * m_h * alpha, beta = 1/m_0 by default
    (memory/policies/tempofit.ts tempoBias). Returns [Hkv] float64; multiply by |t - tau|."""
    slopes = alibi_slopes(kv_heads)
    b = 1.0 / slopes[0] if beta is None else beta
    return torch.tensor([-b * m * alpha for m in slopes], dtype=torch.float64)


# ---------------------------------------------------------------------------------------------
# Decoder


@dataclass
class DecoderConfig:
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 384
    rope_base: float = 10000.0
    rms_norm_eps: float = 1e-5
    action_size: int = 74
    tempo_layers: list[int] = field(default_factory=list)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.heads

    def check(self) -> None:
        assert self.hidden_size % self.heads == 0 and self.heads % self.kv_heads == 0
        assert self.head_dim % 2 == 0
        assert all(0 <= l < self.layers for l in self.tempo_layers)
        assert sorted(set(self.tempo_layers)) == list(self.tempo_layers)

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = torch.sqrt((x * x).mean(-1, keepdim=True) + self.eps)
        return x / rms * self.weight


def rope_tables(position_ids: torch.Tensor, head_dim: int, base: float, dtype=torch.float32):
    """cos, sin [B, 1, S, Dh] from absolute positions [B, S] (angles in float64, as graph.ts)."""
    half = head_dim // 2
    inv_freq = torch.tensor([base ** (-2.0 * i / head_dim) for i in range(half)], dtype=torch.float64,
                            device=position_ids.device)
    freqs = position_ids.to(torch.float64).unsqueeze(2) * inv_freq
    angles = torch.cat([freqs, freqs], dim=-1)
    return torch.cos(angles).to(dtype).unsqueeze(1), torch.sin(angles).to(dtype).unsqueeze(1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def rescale_to_norm(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    norm = lambda t: torch.sqrt((t * t).sum(-1, keepdim=True))
    return x * (norm(ref) / (norm(x) + TEMPO_EPS))


def tempo_load(k: torch.Tensor, v: torch.Tensor, bank_k: torch.Tensor, bank_v: torch.Tensor,
               bias: torch.Tensor):
    """TempoFit K-to-K retrieval + residual loading + norm-preserving rescale (tempo.ts tempoLoad).
    k, v [B, Hkv, S, Dh] pre-RoPE; bank_k, bank_v [B, Hkv, M, Dh]; bias [B, Hkv, 1, M].
    Returns K_hat, V_hat [B, Hkv, S, Dh]."""
    B, Hkv, S, Dh = k.shape
    scores = torch.matmul(k, bank_k.transpose(-1, -2)) * (1.0 / math.sqrt(Dh)) + bias
    null = torch.full_like(k[..., :1], TEMPO_NULL_SCORE)  # [B, Hkv, S, 1] (also when M = 0)
    weights = torch.softmax(torch.cat([null, scores], dim=-1), dim=-1)
    zero = torch.zeros_like(k[:, :, :1])  # [B, Hkv, 1, Dh]
    k_ctx = torch.matmul(weights, torch.cat([zero, bank_k], dim=2))
    v_ctx = torch.matmul(weights, torch.cat([zero, bank_v], dim=2))
    return rescale_to_norm(k + k_ctx, k), rescale_to_norm(v + v_ctx, v)


class Block(nn.Module):
    def __init__(self, c: DecoderConfig, layer: int):
        super().__init__()
        D, H, Hkv, Dh = c.hidden_size, c.heads, c.kv_heads, c.head_dim
        self.c, self.layer = c, layer
        self.attn_norm = RMSNorm(D, c.rms_norm_eps)
        self.wq = nn.Linear(D, H * Dh, bias=False)
        self.wk = nn.Linear(D, Hkv * Dh, bias=False)
        self.wv = nn.Linear(D, Hkv * Dh, bias=False)
        self.wo = nn.Linear(H * Dh, D, bias=False)
        self.mlp_norm = RMSNorm(D, c.rms_norm_eps)
        self.w_gate = nn.Linear(D, c.intermediate_size, bias=False)
        self.w_up = nn.Linear(D, c.intermediate_size, bias=False)
        self.w_down = nn.Linear(c.intermediate_size, D, bias=False)
        self.memory = layer in c.tempo_layers

    def split(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        B, S, _ = x.shape
        return x.view(B, S, heads, self.c.head_dim).transpose(1, 2)

    def qkv(self, x: torch.Tensor):
        """x [B, S, D] -> h (normed), q [B, H, S, Dh], k, v [B, Hkv, S, Dh] (all pre-RoPE)."""
        h = self.attn_norm(x)
        return h, self.split(self.wq(h), self.c.heads), self.split(self.wk(h), self.c.kv_heads), \
            self.split(self.wv(h), self.c.kv_heads)

    def expand(self, kv: torch.Tensor) -> torch.Tensor:
        group = self.c.heads // self.c.kv_heads
        if group == 1:
            return kv
        # [B, Hkv, T, Dh] -> [B, Hkv, group, T, Dh] -> [B, H, T, Dh]: query head h reads KV head h // group
        B, Hkv, T, Dh = kv.shape
        return kv.unsqueeze(2).expand(B, Hkv, group, T, Dh).reshape(B, Hkv * group, T, Dh)

    def finish(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        B, H, S, Dh = context.shape
        x1 = x + self.wo(context.transpose(1, 2).reshape(B, S, H * Dh))
        h2 = self.mlp_norm(x1)
        gate = self.w_gate(h2)
        return x1 + self.w_down(gate * torch.sigmoid(gate) * self.w_up(h2))


class Decoder(nn.Module):
    """The decoder and its action head. `forward_contract` is the ONNX contract (export, fixtures);
    `forward_train` is the training path (full [B, S, T] boolean masks, optional TempoFit bank)."""

    def __init__(self, c: DecoderConfig):
        super().__init__()
        c.check()
        self.c = c
        self.blocks = nn.ModuleList([Block(c, l) for l in range(c.layers)])
        self.final_norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.head = nn.Linear(c.hidden_size, c.action_size, bias=True)
        self.use_sdpa = True

    # -- the ONNX contract ----------------------------------------------------------------------
    def forward_contract(self, inputs_embeds, position_ids, attention_mask, past, obs_window,
                         bank=None, tempo_bias=None):
        """inputs_embeds [B, S, D]; position_ids [B, S] int64; attention_mask [B, T] int64;
        past: list per layer of (key, value) [B, Hkv, P, Dh]; obs_window int64 scalar;
        bank: list per memory layer of (key, value) [B, Hkv, M, Dh]; tempo_bias [B, Hkv, 1, M].
        Returns dict of outputs named as the contract."""
        c = self.c
        S = inputs_embeds.shape[1]
        T = attention_mask.shape[1]
        P = T - S
        dev = inputs_embeds.device
        cos, sin = rope_tables(position_ids, c.head_dim, c.rope_base, dtype=inputs_embeds.dtype)
        key_index = torch.arange(T, device=dev).unsqueeze(0)
        query_index = torch.arange(S, device=dev).unsqueeze(1) + P
        causal = key_index <= query_index  # [S, T]
        allowed = causal.unsqueeze(0).unsqueeze(0) & (attention_mask != 0).unsqueeze(1).unsqueeze(2)
        in_window = (torch.arange(S, device=dev) >= (S - obs_window)).to(inputs_embeds.dtype)
        window_weight = in_window.view(1, 1, S, 1)
        return self.forward_core(inputs_embeds, cos, sin, allowed, window_weight, past, bank, tempo_bias)

    def forward_core(self, inputs_embeds, cos, sin, mask, window_weight, past, bank=None, tempo_bias=None):
        """The contract's step after its integer inputs are turned into tables: cos, sin [B, 1, S, Dh]
        (rope_tables); mask [B, 1, S, T] bool (True = attend; torch.where with MASKED_SCORE) or float
        (added to the scores: 0 or MASKED_SCORE, the fixed-capacity export's attention_bias);
        window_weight [1, 1, S, 1] (1 on the last obs_window queries). Other arguments and the
        result as forward_contract."""
        c = self.c
        group = c.heads // c.kv_heads
        T = mask.shape[-1]
        x = inputs_embeds
        out = {}
        slot = 0
        for l, blk in enumerate(self.blocks):
            h, q, k, v = blk.qkv(x)
            hidden_norm = torch.sqrt((h * h).sum(-1))
            if blk.memory:
                out[f'tempo_prefix.{l}.key'] = k
                out[f'tempo_prefix.{l}.value'] = v
                bk, bv = bank[slot]
                slot += 1
                k, v = tempo_load(k, v, bk, bv, tempo_bias)
            q = apply_rope(q, cos, sin)
            k = apply_rope(k, cos, sin)
            present_k = torch.cat([past[l][0], k], dim=2)
            present_v = torch.cat([past[l][1], v], dim=2)
            scores = torch.matmul(q, blk.expand(present_k).transpose(-1, -2)) * (1.0 / math.sqrt(c.head_dim))
            if mask.dtype == torch.bool:
                masked = torch.where(mask, scores, torch.full_like(scores, MASKED_SCORE))
            else:
                masked = scores + mask
            probs = torch.softmax(masked, dim=-1)  # [B, H, S, T]
            context = torch.matmul(probs, blk.expand(present_v))
            x = blk.finish(x, context)
            B = probs.shape[0]
            out[f'present.{l}.key'] = present_k
            out[f'present.{l}.value'] = present_v
            out[f'attn_window.{l}'] = (probs * window_weight).sum(2).view(B, c.kv_heads, group, T).sum(2)
            out[f'attn_total.{l}'] = probs.sum(2).view(B, c.kv_heads, group, T).sum(2)
            out[f'hidden_norm.{l}'] = hidden_norm
        out['logits'] = self.head(self.final_norm(x))
        return out

    # -- training -------------------------------------------------------------------------------
    def attend(self, blk: Block, q, k, v, allowed):
        """q [B, H, S, Dh], k/v [B, Hkv, T, Dh] post-RoPE; allowed [B, 1, S, T] bool."""
        k, v = blk.expand(k).to(q.dtype), blk.expand(v).to(q.dtype)
        if self.use_sdpa and q.is_cuda and hasattr(F, 'scaled_dot_product_attention'):
            try:
                return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
            except RuntimeError as e:  # fall back to the plain path for good
                print(f'scaled_dot_product_attention failed ({e}); using plain attention', flush=True)
                self.use_sdpa = False
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.c.head_dim))
        scores = scores.masked_fill(~allowed, MASKED_SCORE)
        return torch.matmul(torch.softmax(scores, dim=-1), v)

    def forward_train(self, x, position_ids, allowed, bank=None, bank_bias=None, upto: int | None = None):
        """x [B, S, D]; position_ids [B, S]; allowed [B, 1, S, S] bool (no past: the whole training
        sequence is one prefill). bank: list per memory layer of (key, value) [B, Hkv, M, Dh] or
        None (then no retrieval, e.g. the carried regime); bank_bias [B, Hkv, 1, M].
        upto: stop after this layer (then the hidden state returned is None): the batched TempoFit
        unroll (train.py) only needs the memory layers' prefixes from its early passes.
        Returns final hidden states [B, S, D] (normed) and per memory layer (k, v) pre-RoPE
        [B, Hkv, S, Dh] (for the next frames' bank)."""
        c = self.c
        cos, sin = rope_tables(position_ids, c.head_dim, c.rope_base, dtype=x.dtype)
        prefixes = []
        slot = 0
        for l, blk in enumerate(self.blocks):
            _, q, k, v = blk.qkv(x)
            if blk.memory:
                prefixes.append((k, v))
                if upto is not None and l >= upto:
                    return None, prefixes
                if bank is not None:
                    bk, bv = bank[slot]
                    k, v = tempo_load(k, v, bk, bv, bank_bias)
                slot += 1
            q = apply_rope(q, cos, sin)
            k = apply_rope(k, cos, sin)
            x = blk.finish(x, self.attend(blk, q, k, v, allowed))
        return self.final_norm(x), prefixes


# ---------------------------------------------------------------------------------------------
# Prefix encoder


def conv_stem(channels: list[int]) -> nn.Sequential:
    """conv3x3 stride 2 + GELU stacks: channels[0] -> ... -> channels[-1], one halving each."""
    layers: list[nn.Module] = []
    for cin, cout in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GELU()]
    return nn.Sequential(*layers[:-1])  # no activation after the last conv


class PatchStem(nn.Module):
    """ViT-style patch embedding for rendered screens: pixels centred to [-1, 1], one linear map
    per (2^downsample)-px square patch (a Conv2d with kernel = stride = patch), then GroupNorm(1)
    over the whole feature map (per image). [B, 3, H, W] in [0, 1] -> [B, D, H/p, W/p].

    Why not the conv stem: on GUI screens the digits and labels are a few percent of a mostly
    constant image; the conv stack's outputs at init varied by ~0.014 across screens against
    ~0.12 across positions, and a 4-layer decoder stayed at chance on reading a 4-digit code even
    when memorising 400 frames. With centred pixels, a linear patch map and the normalisation,
    per-digit held-out accuracy leaves chance (0.2-0.3 at step 100) where the conv stem was still at
    chance at step 200 (train/runs/2026-11-29-gui-stem-probe.txt)."""

    def __init__(self, dim: int, patch: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)
        self.norm = nn.GroupNorm(1, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x * 2.0 - 1.0))


@dataclass
class CameraSpec:
    name: str
    height: int
    width: int
    downsample: int  # number of stride-2 convs

    @property
    def grid(self) -> tuple[int, int]:
        f = 2 ** self.downsample
        return self.height // f, self.width // f

    @property
    def tokens(self) -> int:
        gh, gw = self.grid
        return gh * gw


@dataclass
class EncoderConfig:
    hidden_size: int = 128
    cameras: list[CameraSpec] = field(default_factory=list)
    proprio_size: int = 0
    instruction_max_bytes: int = 96
    stem_channels: list[int] = field(default_factory=lambda: [32, 64, 96])
    stem: str = 'conv'  # 'conv' (stride-2 conv stack) or 'patch' (PatchStem)

    def to_dict(self) -> dict:
        d = asdict(self)
        return d

    @staticmethod
    def from_dict(d: dict) -> 'EncoderConfig':
        d = dict(d)
        d['cameras'] = [CameraSpec(**c) for c in d['cameras']]
        return EncoderConfig(**d)

    @property
    def visual_tokens(self) -> int:
        return sum(c.tokens for c in self.cameras)

    def prefix_tokens(self, instruction_bytes: int) -> int:
        return self.visual_tokens + (1 if self.proprio_size else 0) + instruction_bytes


class PrefixEncoder(nn.Module):
    """Observation -> inputs_embeds [B, S, D], layout [visual (camera order, row-major grid)...,
    proprio (1 token, if any), instruction bytes...] (instruction last: the observation window
    lands on it). Images are RGB8 [B, H, W, 3] uint8 (cast and scaled to [0, 1] inside)."""

    def __init__(self, c: EncoderConfig):
        super().__init__()
        self.c = c
        D = c.hidden_size
        self.stems = nn.ModuleList()
        self.visual_pos = nn.ParameterList()
        for cam in c.cameras:
            n = cam.downsample
            if c.stem == 'patch':
                self.stems.append(PatchStem(D, 2 ** n))
            else:
                mids = (c.stem_channels + [c.stem_channels[-1]] * n)[: n - 1]
                self.stems.append(conv_stem([3] + mids + [D]))
            self.visual_pos.append(nn.Parameter(torch.randn(cam.tokens, D) * 0.02))
        self.visual_mlp = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, D), nn.GELU(), nn.Linear(D, D))
        if c.proprio_size:
            self.proprio = nn.Sequential(nn.Linear(c.proprio_size, D), nn.GELU(), nn.Linear(D, D))
        self.byte_embed = nn.Embedding(256, D)
        self.instr_pos = nn.Parameter(torch.randn(c.instruction_max_bytes, D) * 0.02)

    def forward(self, images: list[torch.Tensor], proprio: torch.Tensor | None, instruction: torch.Tensor):
        """images: per camera uint8 [B, H, W, 3] (or float in 0..255); proprio [B, P] float32;
        instruction [B, L] int64 bytes (L <= instruction_max_bytes)."""
        parts = []
        for cam_i, (stem, img) in enumerate(zip(self.stems, images)):
            x = img.to(self.byte_embed.weight.dtype).permute(0, 3, 1, 2) * (1.0 / 255.0)
            feat = stem(x)  # [B, D, gh, gw]
            tokens = feat.flatten(2).transpose(1, 2) + self.visual_pos[cam_i]
            parts.append(tokens)
        visual = torch.cat(parts, dim=1)
        parts = [visual + self.visual_mlp(visual)]
        if self.c.proprio_size:
            parts.append(self.proprio(proprio.to(self.byte_embed.weight.dtype)).unsqueeze(1))
        L = instruction.shape[1]
        parts.append(self.byte_embed(instruction) + self.instr_pos[:L])
        return torch.cat(parts, dim=1)


class ReadingHead(nn.Module):
    """Auxiliary reading loss for GUI screens (training only; not exported): from each visual
    token, predict the glyph class of each 8x8 cell of its patch (sim/gui/raster.ts Frame.glyphs:
    0 none, 1-95 ASCII 33-126 at scale 1, 96-190 at scale 2). The classifier is tied to the
    instruction's byte embeddings (class c of a character scores against byte_embed[code], plus a
    learned offset at scale 2), so reading a label and matching it with the instruction's words
    share one space. Dense supervision on every frame, where the action head supervises reading
    only through the few steps that depend on it."""

    CLASSES = 191

    def __init__(self, encoder: 'PrefixEncoder', cells_per_side: int):
        super().__init__()
        D = encoder.c.hidden_size
        self.encoder = [encoder]  # not a submodule: its weights are the policy's
        self.k = cells_per_side
        self.proj = nn.Linear(D, self.k * self.k * D)
        self.none = nn.Parameter(torch.zeros(D))
        self.big = nn.Parameter(torch.zeros(D))
        self.scale = nn.Parameter(torch.tensor(1.0 / math.sqrt(D)))

    def class_embeddings(self) -> torch.Tensor:
        chars = self.encoder[0].byte_embed.weight[33:127]  # [94, D] ASCII 33..126
        space = self.encoder[0].byte_embed.weight[32:33]  # class 1 is ASCII 32 in the map's offset
        small = torch.cat([space, chars])  # classes 1..95 = code - 31 for codes 32..126
        return torch.cat([self.none.unsqueeze(0), small, small + self.big])  # [191, D]

    def loss(self, visual: torch.Tensor, glyphs: torch.Tensor, grid: tuple[int, int],
             empty_weight: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
        """visual [F, V, D] (V = gh * gw tokens, row-major); glyphs uint8 [F, gh * k, gw * k].
        Returns (weighted CE, accuracy on non-empty cells)."""
        F_, V, D = visual.shape
        gh, gw = grid
        k = self.k
        q = self.proj(visual.float()).view(F_, V, k * k, D)
        logits = torch.matmul(q, self.class_embeddings().float().t()) * self.scale  # [F, V, k*k, C]
        t = glyphs.long().view(F_, gh, k, gw, k).permute(0, 1, 3, 2, 4).reshape(F_, V, k * k)
        ce = F.cross_entropy(logits.reshape(-1, self.CLASSES), t.reshape(-1), reduction='none')
        w = torch.where(t.reshape(-1) > 0, 1.0, empty_weight)
        on = t.reshape(-1) > 0
        acc = (logits.reshape(-1, self.CLASSES).argmax(-1) == t.reshape(-1))[on].float().mean()
        return (ce * w).sum() / w.sum(), acc


# ---------------------------------------------------------------------------------------------
# Action heads


GUI_SEGMENTS = [
    # name, kind, size, meaning
    ('type', 'categorical', 4, 'action type: 0 click, 1 type, 2 scroll, 3 done'),
    ('click_x', 'categorical', 16, 'click cell column 0..15 (x = col*8+4 px)'),
    ('click_y', 'categorical', 12, 'click cell row 0..11 (y = row*8+4 px)'),
    ('digit0', 'categorical', 10, 'first typed digit 0..9'),
    ('digit1', 'categorical', 10, 'second typed digit 0..9'),
    ('digit2', 'categorical', 10, 'third typed digit 0..9'),
    ('digit3', 'categorical', 10, 'fourth typed digit 0..9'),
    ('scroll', 'categorical', 2, 'scroll direction: 0 up (dy=-1), 1 down (dy=+1)'),
]


def robot_segments(chunk: int, grip: bool) -> list[tuple]:
    segs = [('move', 'continuous', 2 * chunk,
             f'[{chunk}, 2] (dx, dy) per tick of the action chunk, units of max speed, first = now')]
    if grip:
        segs.append(('grip', 'binary-logit', chunk,
                     f'[{chunk}] grip logit per tick: close iff logit >= 0 (sigmoid >= 0.5)'))
    return segs


def segment_table(segments: list[tuple]) -> list[dict]:
    out, offset = [], 0
    for name, kind, size, meaning in segments:
        out.append({'name': name, 'kind': kind, 'offset': offset, 'size': size, 'meaning': meaning})
        offset += size
    return out


class Policy(nn.Module):
    """Encoder + decoder, the unit that is trained; exported as two ONNX files."""

    def __init__(self, enc: EncoderConfig, dec: DecoderConfig, segments: list[tuple]):
        super().__init__()
        self.encoder = PrefixEncoder(enc)
        self.decoder = Decoder(dec)
        self.segments = segment_table(segments)
        assert sum(s['size'] for s in self.segments) == dec.action_size
