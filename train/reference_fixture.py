"""Writes test/fixtures/train-reference.json: a tiny random-weight torch Decoder (train/model.py)
with its weights in models/decoder/weights.ts layout and its float64 outputs on a carried step
(past KV, masked past keys, obs_window) and a TempoFit step (bank with an empty slot), so
test/train/reference.test.ts can check train/model.py's semantics against test/reference/decoder64.ts.

  python3 train/reference_fixture.py [--out test/fixtures/train-reference.json]
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Decoder, DecoderConfig, tempo_bias_per_gap  # noqa: E402


def f32(t) -> dict:
    a = np.array(t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t, dtype='<f4', order='C')
    return {'dims': list(a.shape), 'b64': base64.b64encode(a.tobytes()).decode()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'train-reference.json'))
    args = ap.parse_args(argv)
    torch.manual_seed(7)
    c = DecoderConfig(hidden_size=32, layers=3, heads=4, kv_heads=2, intermediate_size=48, action_size=11,
                      tempo_layers=[1])
    dec = Decoder(c).double().eval()
    with torch.no_grad():
        for p in dec.parameters():
            p.copy_(torch.randn_like(p) * (0.3 if p.dim() == 2 else 0.2) + (1.0 if p.dim() == 1 else 0.0))
        dec.head.bias.zero_()  # decoder64 has no head bias
        # round weights to float32 so both sides use the same values
        for p in dec.parameters():
            p.copy_(p.float().double())
    Hkv, Dh = c.kv_heads, c.head_dim
    S, P, M = 5, 4, 6

    def r(*shape, scale=1.0):
        return (torch.randn(*shape, dtype=torch.float64) * scale).float().double()

    emb = r(1, S, c.hidden_size)
    past = [(r(1, Hkv, P, Dh), r(1, Hkv, P, Dh)) for _ in range(c.layers)]
    mask = torch.tensor([[1, 0, 1, 1, 1, 1, 0, 1, 1]], dtype=torch.int64)  # a masked past key and a masked new key
    positions = torch.arange(40, 40 + S).view(1, S)
    bank = [(r(1, Hkv, M, Dh, scale=1.5), r(1, Hkv, M, Dh, scale=1.5))]
    gaps = torch.tensor([2.0, 2.0, 2.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    bias = (tempo_bias_per_gap(Hkv).view(1, Hkv, 1, 1) * gaps.view(1, 1, 1, M)).clone()
    bias[..., 0] = -1e9  # an empty slot
    bias = bias.float().double()
    cases = []
    with torch.no_grad():
        for name, kw in (('carried', dict(past=past, mask=mask, pos=positions, w=2, bank=[(r(1, Hkv, 0, Dh),) * 2],
                                          bias=torch.zeros(1, Hkv, 1, 0, dtype=torch.float64))),
                         ('tempo', dict(past=[(torch.zeros(1, Hkv, 0, Dh, dtype=torch.float64),) * 2] * c.layers,
                                        mask=torch.ones(1, S, dtype=torch.int64), pos=torch.arange(S).view(1, S), w=3,
                                        bank=bank, bias=bias))):
            out = dec.forward_contract(emb, kw['pos'], kw['mask'], kw['past'], torch.tensor(kw['w']), kw['bank'], kw['bias'])
            cases.append({
                'name': name,
                'positionIds': kw['pos'][0].tolist(), 'attentionMask': kw['mask'][0].tolist(), 'obsWindow': kw['w'],
                'past': [{'key': f32(k[0]), 'value': f32(v[0])} for k, v in kw['past']],
                'tempo': None if name == 'carried' else {
                    'layers': c.tempo_layers, 'bank': [{'key': f32(k[0]), 'value': f32(v[0])} for k, v in kw['bank']],
                    'bias': f32(kw['bias'][0, :, 0, :])},
                'outputs': {k: f32(v[0]) for k, v in out.items()},
            })
    lin = lambda m: f32(m.weight.t())  # torch [out, in] -> [in, out]
    weights = {
        # inputs_embeds as an embedding table: token i = row i (padded to vocabSize = action size rows)
        'embed': f32(torch.cat([emb[0], torch.zeros(c.action_size - S, c.hidden_size, dtype=torch.float64)])),
        'layers': [{'attnNorm': f32(b.attn_norm.weight), 'wq': lin(b.wq), 'wk': lin(b.wk), 'wv': lin(b.wv),
                    'wo': lin(b.wo), 'mlpNorm': f32(b.mlp_norm.weight), 'wGate': lin(b.w_gate), 'wUp': lin(b.w_up),
                    'wDown': lin(b.w_down)} for b in dec.blocks],
        'finalNorm': f32(dec.final_norm.weight),
        'lmHead': lin(dec.head),
    }
    config = {'vocabSize': c.action_size, 'hiddenSize': c.hidden_size, 'layers': c.layers, 'heads': c.heads, 'kvHeads': Hkv,
              'headDim': Dh, 'intermediateSize': c.intermediate_size, 'ropeBase': c.rope_base,
              'rmsNormEps': c.rms_norm_eps, 'maxPosition': 1_000_000, 'tempoLayers': c.tempo_layers}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump({'config': config, 'weights': weights, 'actionSize': c.action_size, 'cases': cases}, f)
    print(f'reference fixture: {args.out} ({os.path.getsize(args.out)} B)')


if __name__ == '__main__':
    main()
