"""Bring your own model: exports a user's Llama-style PyTorch decoder to stepkv's model contract
(README "Model contract", train/README.md "Bring your own model").

The user's weights are copied into train/model.py's `Decoder`, which already computes every
optional port (`obs_window` -> `attn_window.{l}`, `attn_total.{l}`, `hidden_norm.{l}`, and at the
chosen memory layers TempoFit's `tempo.{l}.key|value` + `tempo_bias` in, `tempo_prefix.{l}.*`
out), then exported to ONNX with train/export.py's port tables and a manifest is written. Copying
weights instead of hooking the user's forward keeps one implementation of the ports (the one the
project's float64 reference checks, test/train/reference.test.ts); `check_parity` proves the copy
is the same function as the user's module.

What "Llama-style" means here: token embedding; per layer pre-RMSNorm attention with bias-free
q/k/v/o projections, GQA (query head h reads KV head h // (H / Hkv)), rotate-half RoPE on absolute
positions; pre-RMSNorm SwiGLU MLP down(silu(gate(x)) * up(x)); final RMSNorm; an LM head. Weights
in the Hugging Face layout by default (`LlamaNames`); Meta's original interleaved-RoPE layout is
converted with `interleaved_rope=True`.

  python3 train/byom.py --demo --out /tmp/byom-demo [--tempo-layers 1,2]   # a random tiny Llama

Python API: `wrap(user_module, heads=…, kv_heads=…)` -> `StepkvDecoder`; `check_parity(user, wrapped,
forward=…)` -> max |Δlogits|; `export(wrapped, out, model_id)` -> manifest dict.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Decoder, DecoderConfig  # noqa: E402
from export import OPSET, decoder_args, decoder_ports, dynamic_axes, onnx_export, sha256  # noqa: E402,F401

#: Positions a session may reach (the manifest's maxPosition): the runtime refuses later ones.
DEFAULT_MAX_POSITION = 65536


@dataclass
class LlamaNames:
    """Where the weights sit in the user's module (dotted paths; per-layer ones relative to a
    layer). Defaults: Hugging Face `LlamaForCausalLM` (also Mistral, Qwen2 without biases)."""
    layers: str = 'model.layers'
    embed: str = 'model.embed_tokens'
    final_norm: str = 'model.norm'
    head: str = 'lm_head'
    q: str = 'self_attn.q_proj'
    k: str = 'self_attn.k_proj'
    v: str = 'self_attn.v_proj'
    o: str = 'self_attn.o_proj'
    attn_norm: str = 'input_layernorm'
    mlp_norm: str = 'post_attention_layernorm'
    gate: str = 'mlp.gate_proj'
    up: str = 'mlp.up_proj'
    down: str = 'mlp.down_proj'


class ByomError(ValueError):
    """The user's module does not fit the contract (names the weight and the shapes)."""


def _get(module: nn.Module, path: str) -> nn.Module | torch.Tensor:
    obj = module
    for part in path.split('.'):
        if not hasattr(obj, part) and not (part.isdigit() and isinstance(obj, (nn.ModuleList, list))):
            raise ByomError(f"the module has no '{path}' (missing '{part}'); pass names=LlamaNames(...) for your layout")
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def _weight(module: nn.Module, path: str) -> torch.Tensor:
    obj = _get(module, path)
    w = obj if isinstance(obj, torch.Tensor) else getattr(obj, 'weight', None)
    if w is None:
        raise ByomError(f"'{path}' has no weight")
    bias = None if isinstance(obj, torch.Tensor) else getattr(obj, 'bias', None)
    if bias is not None and path.split('.')[-1] not in ('lm_head', 'head') and bool((bias != 0).any()):
        raise ByomError(f"'{path}' has a non-zero bias: the contract's projections and norms are bias-free")
    return w.detach()


def _permute_interleaved(w: torch.Tensor, heads: int) -> torch.Tensor:
    """Meta's interleaved-RoPE q/k rows -> rotate-half order (the Hugging Face conversion's permute).
    w [heads * Dh, D]."""
    out_dim, in_dim = w.shape
    return w.view(heads, out_dim // heads // 2, 2, in_dim).transpose(1, 2).reshape(out_dim, in_dim)


class StepkvDecoder(nn.Module):
    """The user's weights in the contract's decoder: `input_ids` -> embedding -> `Decoder`.
    `forward_contract(input_ids, position_ids, attention_mask, past, obs_window, bank, tempo_bias)`
    returns every contract output (train/model.py Decoder.forward_contract)."""

    def __init__(self, c: DecoderConfig, vocab_size: int):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(vocab_size, c.hidden_size)
        self.decoder = Decoder(c)

    def forward_contract(self, input_ids, position_ids, attention_mask, past, obs_window, bank=None, tempo_bias=None):
        return self.decoder.forward_contract(self.embed(input_ids), position_ids, attention_mask, past, obs_window, bank, tempo_bias)


def wrap(user: nn.Module, heads: int, kv_heads: int, rope_base: float = 10000.0, rms_norm_eps: float = 1e-5,
         tempo_layers: list[int] | tuple[int, ...] = (), names: LlamaNames = LlamaNames(),
         interleaved_rope: bool = False) -> StepkvDecoder:
    """Copies a Llama-style decoder's weights into a `StepkvDecoder` (float32, eval mode).

    user : nn.Module, the decoder (weights at `names`); it is not modified
    heads, kv_heads : int, query and KV heads (heads % kv_heads == 0)
    rope_base : float, default=10000.0, RoPE theta (HF `rope_theta`; no RoPE scaling is supported)
    rms_norm_eps : float, default=1e-5
    tempo_layers : list[int], default=(), TempoFit memory layers (e.g. model.middle_third_layers(L));
        adds the bank ports there. The weights are not trained with a bank: TempoFit is training-free
        for large pretrained models (arXiv:2603.07647), an empty bank leaves the function unchanged.
    Raises ByomError naming the weight whose path or shape does not fit.
    """
    embed = _weight(user, names.embed)
    vocab, hidden = embed.shape
    layers = _get(user, names.layers)
    if not isinstance(layers, (nn.ModuleList, list)) or len(layers) == 0:
        raise ByomError(f"'{names.layers}' must be a non-empty ModuleList of decoder layers")
    if hidden % heads or heads % kv_heads:
        raise ByomError(f'hidden size {hidden} must divide by heads {heads}, and heads by kv_heads {kv_heads}')
    head_dim = hidden // heads
    gate0 = _weight(layers[0], names.gate)
    head_w = _weight(user, names.head)
    c = DecoderConfig(hidden_size=hidden, layers=len(layers), heads=heads, kv_heads=kv_heads,
                      intermediate_size=gate0.shape[0], rope_base=rope_base, rms_norm_eps=rms_norm_eps,
                      action_size=head_w.shape[0], tempo_layers=list(tempo_layers))
    try:
        c.check()
    except AssertionError:
        raise ByomError(f'config does not fit the contract: {c}') from None
    out = StepkvDecoder(c, vocab)
    expected = {'q': (heads * head_dim, hidden), 'k': (kv_heads * head_dim, hidden), 'v': (kv_heads * head_dim, hidden),
                'o': (hidden, heads * head_dim), 'gate': (c.intermediate_size, hidden), 'up': (c.intermediate_size, hidden),
                'down': (hidden, c.intermediate_size), 'attn_norm': (hidden,), 'mlp_norm': (hidden,)}
    target = {'q': 'wq', 'k': 'wk', 'v': 'wv', 'o': 'wo', 'gate': 'w_gate', 'up': 'w_up', 'down': 'w_down',
              'attn_norm': 'attn_norm', 'mlp_norm': 'mlp_norm'}
    with torch.no_grad():
        out.embed.weight.copy_(embed.float())
        for l, (layer, blk) in enumerate(zip(layers, out.decoder.blocks)):
            for key, shape in expected.items():
                w = _weight(layer, getattr(names, key)).float()
                if tuple(w.shape) != shape:
                    raise ByomError(f"layer {l} '{getattr(names, key)}' is {tuple(w.shape)}, expected {shape}")
                if interleaved_rope and key in ('q', 'k'):
                    w = _permute_interleaved(w, heads if key == 'q' else kv_heads)
                getattr(blk, target[key]).weight.copy_(w)
        out.decoder.final_norm.weight.copy_(_weight(user, names.final_norm).float())
        if tuple(head_w.shape) != (c.action_size, hidden):
            raise ByomError(f"'{names.head}' is {tuple(head_w.shape)}, expected ({c.action_size}, {hidden})")
        out.decoder.head.weight.copy_(head_w.float())
        bias = getattr(_get(user, names.head), 'bias', None)
        out.decoder.head.bias.copy_(bias.detach().float() if bias is not None else torch.zeros(c.action_size))
    return out.eval()


def contract_logits(wrapped: StepkvDecoder, input_ids: torch.Tensor) -> torch.Tensor:
    """Logits [1, S, vocab] of one prefill from position 0 with no past, through the contract."""
    c = wrapped.c
    S = input_ids.shape[1]
    past = [(torch.zeros(1, c.kv_heads, 0, c.head_dim),) * 2 for _ in range(c.layers)]
    bank = [(torch.zeros(1, c.kv_heads, 0, c.head_dim),) * 2 for _ in c.tempo_layers] or None
    bias = torch.zeros(1, c.kv_heads, 1, 0) if c.tempo_layers else None
    with torch.no_grad():
        return wrapped.forward_contract(input_ids, torch.arange(S).view(1, S), torch.ones(1, S, dtype=torch.int64),
                                        past, torch.tensor(1), bank, bias)['logits']


def check_parity(user: nn.Module, wrapped: StepkvDecoder, forward=None, tokens: int = 24, seed: int = 0) -> float:
    """Max |Δ| between the user's logits and the wrapped contract's on random ids (no past).

    forward : callable(module, input_ids [1, S] int64) -> logits [1, S, vocab]; default
        `user(input_ids)` (a `.logits` attribute is read if present, as HF returns).
    Returns the max absolute difference (float); compare with the logits' scale.
    """
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, wrapped.embed.num_embeddings, (1, tokens), generator=g)
    with torch.no_grad():
        theirs = forward(user, ids) if forward else user(ids)
    theirs = getattr(theirs, 'logits', theirs)
    return float((theirs.float() - contract_logits(wrapped, ids)).abs().max())


class _Export(nn.Module):
    """Flat positional inputs in port order (input_ids first), outputs in port order."""

    def __init__(self, wrapped: StepkvDecoder):
        super().__init__()
        self.w = wrapped
        self.names = [p['name'] for p in decoder_ports(wrapped.c)[1]]

    def forward(self, input_ids, position_ids, attention_mask, *rest):
        c = self.w.c
        past = [(rest[2 * l], rest[2 * l + 1]) for l in range(c.layers)]
        tail = rest[2 * c.layers + 1:]
        bank = [(tail[2 * i], tail[2 * i + 1]) for i in range(len(c.tempo_layers))] or None
        out = self.w.forward_contract(input_ids, position_ids, attention_mask, past, rest[2 * c.layers], bank,
                                      tail[-1] if c.tempo_layers else None)
        return tuple(out[n] for n in self.names)


def ports_of(c: DecoderConfig) -> tuple[list[dict], list[dict]]:
    """The contract's ports (train/export.py `decoder_ports`) with `input_ids` in place of `inputs_embeds`."""
    inputs, outputs = decoder_ports(c)
    inputs[0] = {'name': 'input_ids', 'dtype': 'int64', 'dims': ['batch', 'seq']}
    return inputs, outputs


def export(wrapped: StepkvDecoder, out: str, model_id: str, max_position: int = DEFAULT_MAX_POSITION,
           provenance: dict | None = None) -> dict:
    """Writes `out/model.onnx` (opset 17) and `out/manifest.json`; returns the manifest.

    The manifest is a text model's (as `tiny-gqa`): `input_ids`, tokenizer bytes when the vocabulary
    is 256 (UTF-8 bytes are the ids), else `{kind: 'ids', vocabSize}` (clients send `{tokens}`).
    """
    c = wrapped.c
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(2)
    S, P, M = 7, 5, 6
    ids = torch.randint(0, wrapped.embed.num_embeddings, (1, S), generator=g)
    positions = torch.arange(P, P + S).view(1, S)
    mask = torch.ones(1, P + S, dtype=torch.int64)
    past = [(torch.randn(1, c.kv_heads, P, c.head_dim, generator=g), torch.randn(1, c.kv_heads, P, c.head_dim, generator=g))
            for _ in range(c.layers)]
    bank = [(torch.randn(1, c.kv_heads, M, c.head_dim, generator=g), torch.randn(1, c.kv_heads, M, c.head_dim, generator=g))
            for _ in c.tempo_layers]
    bias = -torch.rand(1, c.kv_heads, 1, M, generator=g)
    inputs, outputs = ports_of(c)
    path = os.path.join(out, 'model.onnx')
    onnx_export(_Export(wrapped), decoder_args(c, ids, positions, mask, past, 3, bank, bias), path, inputs, outputs)
    vocab = wrapped.embed.num_embeddings
    manifest = {
        'id': model_id, 'file': 'model.onnx', 'sha256': sha256(path), 'architecture': 'decoder',
        'layers': c.layers, 'heads': c.heads, 'kvHeads': c.kv_heads, 'headDim': c.head_dim,
        'hiddenSize': c.hidden_size, 'intermediateSize': c.intermediate_size, 'vocabSize': c.action_size,
        'ropeBase': c.rope_base, 'rmsNormEps': c.rms_norm_eps, 'maxPosition': max_position,
        'tokenizer': {'kind': 'bytes'} if vocab == 256 else {'kind': 'ids', 'vocabSize': vocab},
        'inputs': inputs, 'outputs': outputs,
        'ports': {'inputIds': True, 'inputsEmbeds': False, 'obsWindow': True, 'attnWindow': True, 'attnTotal': True,
                  'hiddenNorm': True, 'tempo': bool(c.tempo_layers)},
        'tempoLayers': list(c.tempo_layers),
        'provenance': {'generator': 'train/byom.py', 'opset': OPSET, 'torch': torch.__version__, **(provenance or {})},
        'tempo': {'frames': 8, 'beta': 'auto', 'tokenScale': 1, 'note': 'untrained with the bank (training-free use)'}
        if c.tempo_layers else None,
    }
    with open(os.path.join(out, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
    return manifest


# ---------------------------------------------------------------------------------------------
# a minimal Hugging Face-layout Llama, for the demo and the tests (what a user's module looks like)


class _RMS(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(1 + 0.1 * torch.randn(d)), eps

    def forward(self, x):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.eps) * self.weight


class TinyLlama(nn.Module):
    """Random-weight Llama in the HF layout with its own forward (rotate-half RoPE, GQA, causal)."""

    def __init__(self, vocab=256, hidden=64, layers=3, heads=4, kv_heads=2, inter=96, theta=10000.0, eps=1e-5, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.heads, self.kv_heads, self.theta = heads, kv_heads, theta
        Dh = hidden // heads
        lin = lambda i, o: nn.Linear(i, o, bias=False)  # noqa: E731
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(vocab, hidden)
        self.model.layers = nn.ModuleList()
        for _ in range(layers):
            layer = nn.Module()
            layer.self_attn = nn.Module()
            layer.self_attn.q_proj, layer.self_attn.k_proj = lin(hidden, heads * Dh), lin(hidden, kv_heads * Dh)
            layer.self_attn.v_proj, layer.self_attn.o_proj = lin(hidden, kv_heads * Dh), lin(heads * Dh, hidden)
            layer.mlp = nn.Module()
            layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj = lin(hidden, inter), lin(hidden, inter), lin(inter, hidden)
            layer.input_layernorm, layer.post_attention_layernorm = _RMS(hidden, eps), _RMS(hidden, eps)
            self.model.layers.append(layer)
        self.model.norm = _RMS(hidden, eps)
        self.lm_head = lin(hidden, vocab)

    def forward(self, input_ids):
        x = self.model.embed_tokens(input_ids)
        B, S, D = x.shape
        H, Hkv, Dh = self.heads, self.kv_heads, D // self.heads
        inv = 1.0 / (self.theta ** (torch.arange(0, Dh, 2, dtype=torch.float64) / Dh))
        ang = torch.outer(torch.arange(S, dtype=torch.float64), inv)
        cos, sin = torch.cat([ang, ang], -1).cos().float(), torch.cat([ang, ang], -1).sin().float()
        rot = lambda t: t * cos + torch.cat([-t[..., Dh // 2:], t[..., :Dh // 2]], -1) * sin  # noqa: E731
        causal = torch.ones(S, S, dtype=torch.bool).tril()
        for layer in self.model.layers:
            h = layer.input_layernorm(x)
            a = layer.self_attn
            q = rot(a.q_proj(h).view(B, S, H, Dh).transpose(1, 2))
            k = rot(a.k_proj(h).view(B, S, Hkv, Dh).transpose(1, 2)).repeat_interleave(H // Hkv, 1)
            v = a.v_proj(h).view(B, S, Hkv, Dh).transpose(1, 2).repeat_interleave(H // Hkv, 1)
            att = (q @ k.transpose(-1, -2) / Dh ** 0.5).masked_fill(~causal, float('-inf')).softmax(-1)
            x = x + a.o_proj((att @ v).transpose(1, 2).reshape(B, S, D))
            h = layer.post_attention_layernorm(x)
            g = layer.mlp.gate_proj(h)
            x = x + layer.mlp.down_proj(g * torch.sigmoid(g) * layer.mlp.up_proj(h))
        return self.lm_head(self.model.norm(x))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--demo', action='store_true', help='export a random TinyLlama (the only source the CLI takes; '
                    'for your own module call wrap() and export() from Python)')
    ap.add_argument('--out', required=True, help='models/<id>')
    ap.add_argument('--id', default='byom-demo')
    ap.add_argument('--tempo-layers', default='', help='comma-separated memory layers, e.g. 1,2')
    args = ap.parse_args(argv)
    if not args.demo:
        ap.error('only --demo is a CLI source; see train/README.md "Bring your own model" for the Python API')
    user = TinyLlama().eval()
    tempo = [int(x) for x in args.tempo_layers.split(',') if x]
    wrapped = wrap(user, heads=4, kv_heads=2, tempo_layers=tempo)
    diff = check_parity(user, wrapped)
    manifest = export(wrapped, args.out, args.id, provenance={'source': 'train/byom.py TinyLlama (random weights)'})
    print(f"byom {args.id}: parity max|Δlogits| {diff:.2e}; model.onnx {os.path.getsize(os.path.join(args.out, 'model.onnx'))} B; "
          f"layers {manifest['layers']}, kvHeads {manifest['kvHeads']}, tempoLayers {manifest['tempoLayers']}", flush=True)


if __name__ == '__main__':
    main()
