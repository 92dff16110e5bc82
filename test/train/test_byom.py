"""train/byom.py on CPU (torch 1.13+): the wrapped contract decoder is the user's function (logits
parity with and without TempoFit ports, Meta's interleaved layout converted), a split prefill with
the carried past equals one prefill, the ports have the contract's shapes and sums, misfits raise
ByomError, and the export writes model.onnx + a manifest. With BYOM_OUT set, the export goes there
with fixture.json (inputs and torch outputs) for test/train/byom.test.ts to run in ORT.

  /usr/bin/python3 -m unittest test/train/test_byom.py
"""
import json
import os
import sys
import tempfile
import unittest

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../train'))
from byom import ByomError, LlamaNames, TinyLlama, check_parity, contract_logits, export, wrap  # noqa: E402


def run(wrapped, ids, start, past, obs_window=4):
    c = wrapped.c
    S = ids.shape[1]
    P = past[0][0].shape[2]
    bank = [(torch.zeros(1, c.kv_heads, 0, c.head_dim),) * 2 for _ in c.tempo_layers] or None
    bias = torch.zeros(1, c.kv_heads, 1, 0) if c.tempo_layers else None
    with torch.no_grad():
        return wrapped.forward_contract(ids, torch.arange(start, start + S).view(1, S), torch.ones(1, P + S, dtype=torch.int64),
                                        past, torch.tensor(obs_window), bank, bias)


def empty_past(c):
    return [(torch.zeros(1, c.kv_heads, 0, c.head_dim),) * 2 for _ in range(c.layers)]


class ByomTest(unittest.TestCase):
    def setUp(self):
        self.user = TinyLlama().eval()

    def test_parity(self):
        for tempo in ([], [1]):
            wrapped = wrap(self.user, heads=4, kv_heads=2, tempo_layers=tempo)
            self.assertLess(check_parity(self.user, wrapped), 1e-4, f'tempo {tempo}')

    def test_interleaved_layout(self):
        meta = TinyLlama().eval()
        with torch.no_grad():
            for layer in meta.model.layers:  # HF -> Meta: the inverse of the conversion's permute
                for name, heads in (('q_proj', 4), ('k_proj', 2)):
                    w = getattr(layer.self_attn, name).weight
                    o, i = w.shape
                    w.copy_(w.view(heads, 2, o // heads // 2, i).transpose(1, 2).reshape(o, i))
        wrapped = wrap(meta, heads=4, kv_heads=2, interleaved_rope=True)
        self.assertLess(float((contract_logits(wrapped, torch.arange(20).view(1, 20)) - self.user(torch.arange(20).view(1, 20))).abs().max()), 1e-4)
        self.assertGreater(float((contract_logits(wrap(meta, heads=4, kv_heads=2), torch.arange(20).view(1, 20)) - self.user(torch.arange(20).view(1, 20))).abs().max()), 1e-3)

    def test_split_prefill_and_ports(self):
        wrapped = wrap(self.user, heads=4, kv_heads=2)
        c = wrapped.c
        ids = torch.randint(0, 256, (1, 24), generator=torch.Generator().manual_seed(1))
        full = run(wrapped, ids, 0, empty_past(c))
        first = run(wrapped, ids[:, :10], 0, empty_past(c))
        past = [(first[f'present.{l}.key'], first[f'present.{l}.value']) for l in range(c.layers)]
        second = run(wrapped, ids[:, 10:], 10, past)
        self.assertLess(float((second['logits'] - full['logits'][:, 10:]).abs().max()), 1e-4)
        group = c.heads // c.kv_heads
        for l in range(c.layers):
            self.assertEqual(tuple(second[f'attn_window.{l}'].shape), (1, c.kv_heads, 24))
            self.assertEqual(tuple(second[f'hidden_norm.{l}'].shape), (1, 14))
            # each query's probabilities sum to 1: per KV head, obs_window (4) queries × group heads
            sums = second[f'attn_window.{l}'].sum(-1)
            self.assertTrue(torch.allclose(sums, torch.full_like(sums, 4.0 * group), atol=1e-4))
            totals = second[f'attn_total.{l}'].sum(-1)
            self.assertTrue(torch.allclose(totals, torch.full_like(totals, 14.0 * group), atol=1e-4))

    def test_misfits_raise(self):
        with self.assertRaisesRegex(ByomError, "no 'model.decoder.layers'"):
            wrap(self.user, heads=4, kv_heads=2, names=LlamaNames(layers='model.decoder.layers'))
        with self.assertRaisesRegex(ByomError, 'divide'):
            wrap(self.user, heads=5, kv_heads=1)
        with self.assertRaisesRegex(ByomError, r"layer 0 'self_attn.k_proj' is \(32, 64\), expected \(64, 64\)"):
            wrap(self.user, heads=4, kv_heads=4)
        biased = TinyLlama().eval()
        biased.model.layers[0].self_attn.q_proj = nn.Linear(64, 64, bias=True)
        with self.assertRaisesRegex(ByomError, 'non-zero bias'):
            wrap(biased, heads=4, kv_heads=2)

    def test_export(self):
        out = os.environ.get('BYOM_OUT') or tempfile.mkdtemp(prefix='byom-')
        wrapped = wrap(self.user, heads=4, kv_heads=2, tempo_layers=[1])
        m = export(wrapped, out, 'byom-test')
        self.assertTrue(os.path.getsize(os.path.join(out, 'model.onnx')) > 0)
        self.assertEqual(m['ports'], {'inputIds': True, 'inputsEmbeds': False, 'obsWindow': True, 'attnWindow': True,
                                      'attnTotal': True, 'hiddenNorm': True, 'tempo': True})
        self.assertEqual([p['name'] for p in m['inputs']][:4], ['input_ids', 'position_ids', 'attention_mask', 'past_key_values.0.key'])
        self.assertIn('tempo.1.key', [p['name'] for p in m['inputs']])
        self.assertIn('tempo_prefix.1.value', [p['name'] for p in m['outputs']])
        self.assertEqual((m['layers'], m['kvHeads'], m['headDim'], m['vocabSize'], m['tokenizer']), (3, 2, 16, 256, {'kind': 'bytes'}))
        # inputs and torch outputs of one prefill (empty past and bank) for the ORT check
        ids = torch.arange(65, 65 + 12).view(1, 12)
        outs = run(wrapped, ids, 0, empty_past(wrapped.c))
        pick = ['logits', 'attn_window.0', 'attn_total.2', 'hidden_norm.1', 'tempo_prefix.1.key', 'present.2.value']
        fixture = {'inputIds': ids.flatten().tolist(), 'obsWindow': 4,
                   'outputs': {n: {'dims': list(outs[n].shape), 'data': outs[n].flatten().tolist()} for n in pick}}
        with open(os.path.join(out, 'fixture.json'), 'w') as f:
            json.dump(fixture, f)


if __name__ == '__main__':
    unittest.main()
