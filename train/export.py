"""Exports a trained policy (train.py checkpoint) to models/<id>/{encoder.onnx, model.onnx,
manifest.json} (opset 17) and writes the parity fixture test/fixtures/<id>.json.

  python3 train/export.py --ckpt CKPT.pt --out models/<id> [--fixture test/fixtures/<id>.json]
        [--log train-log.txt]

Decoder ports follow ARCHITECTURE.md "Model contract" and models/decoder/graph.ts (inputs_embeds
instead of input_ids). The encoder maps one observation to inputs_embeds [1, S, D].
Fixture tensors are stored as {dtype, dims, b64} (little-endian bytes, base64); torch's outputs
come from a float64 copy of the model, stored as float32.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import inspect
import json
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import (DecoderConfig, EncoderConfig, Policy, tempo_bias_per_gap)  # noqa: E402

OPSET = 17
MAX_POSITION = 65536


def load_policy(ckpt_path: str) -> tuple[Policy, dict]:
    try:  # torch >= 2.6 defaults to weights_only=True; the checkpoint is our own
        ck = torch.load(ckpt_path, map_location='cpu', weights_only=False)
    except TypeError:
        ck = torch.load(ckpt_path, map_location='cpu')
    enc = EncoderConfig.from_dict(ck['encoder'])
    dec = DecoderConfig(**ck['decoder'])
    segs = [(s['name'], s['kind'], s['size'], s['meaning']) for s in ck['segments']]
    policy = Policy(enc, dec, segs)
    policy.load_state_dict(ck['state_dict'])
    policy.eval()
    return policy, ck


# ---------------------------------------------------------------------------------------------
# port tables


def encoder_ports(enc: EncoderConfig) -> tuple[list[dict], list[dict]]:
    inputs = [{'name': image_input(c.name, enc), 'dtype': 'uint8', 'dims': ['batch', c.height, c.width, 3]}
              for c in enc.cameras]
    if enc.proprio_size:
        inputs.append({'name': 'proprio', 'dtype': 'float32', 'dims': ['batch', enc.proprio_size]})
    inputs.append({'name': 'instruction', 'dtype': 'int64', 'dims': ['batch', 'instruction']})
    outputs = [{'name': 'inputs_embeds', 'dtype': 'float32', 'dims': ['batch', 'seq', enc.hidden_size]}]
    return inputs, outputs


def image_input(camera: str, enc: EncoderConfig) -> str:
    return 'image' if len(enc.cameras) == 1 else f'image.{camera}'


def decoder_ports(c: DecoderConfig) -> tuple[list[dict], list[dict]]:
    Hkv, Dh = c.kv_heads, c.head_dim
    inputs = [
        {'name': 'inputs_embeds', 'dtype': 'float32', 'dims': ['batch', 'seq', c.hidden_size]},
        {'name': 'position_ids', 'dtype': 'int64', 'dims': ['batch', 'seq']},
        {'name': 'attention_mask', 'dtype': 'int64', 'dims': ['batch', 'total']},
    ]
    for l in range(c.layers):
        for part in ('key', 'value'):
            inputs.append({'name': f'past_key_values.{l}.{part}', 'dtype': 'float32', 'dims': ['batch', Hkv, 'past', Dh]})
    inputs.append({'name': 'obs_window', 'dtype': 'int64', 'dims': []})
    for l in c.tempo_layers:
        for part in ('key', 'value'):
            inputs.append({'name': f'tempo.{l}.{part}', 'dtype': 'float32', 'dims': ['batch', Hkv, 'memory', Dh]})
    if c.tempo_layers:
        inputs.append({'name': 'tempo_bias', 'dtype': 'float32', 'dims': ['batch', Hkv, 1, 'memory']})
    outputs = [{'name': 'logits', 'dtype': 'float32', 'dims': ['batch', 'seq', c.action_size]}]
    for l in range(c.layers):
        present = ['batch', Hkv, 'total', Dh]
        outputs += [
            {'name': f'present.{l}.key', 'dtype': 'float32', 'dims': present},
            {'name': f'present.{l}.value', 'dtype': 'float32', 'dims': present},
            {'name': f'attn_window.{l}', 'dtype': 'float32', 'dims': ['batch', Hkv, 'total']},
            {'name': f'attn_total.{l}', 'dtype': 'float32', 'dims': ['batch', Hkv, 'total']},
            {'name': f'hidden_norm.{l}', 'dtype': 'float32', 'dims': ['batch', 'seq']},
        ]
        if l in c.tempo_layers:
            outputs += [{'name': f'tempo_prefix.{l}.{part}', 'dtype': 'float32', 'dims': ['batch', Hkv, 'seq', Dh]}
                        for part in ('key', 'value')]
    return inputs, outputs


def dynamic_axes(ports: list[dict]) -> dict:
    return {p['name']: {i: d for i, d in enumerate(p['dims']) if isinstance(d, str)} for p in ports
            if any(isinstance(d, str) for d in p['dims'])}


# ---------------------------------------------------------------------------------------------
# export wrappers (flat positional inputs in port order, outputs in port order)


class EncoderExport(nn.Module):
    def __init__(self, policy: Policy):
        super().__init__()
        self.enc = policy.encoder
        self.n_cam = len(policy.encoder.c.cameras)
        self.has_proprio = bool(policy.encoder.c.proprio_size)

    def forward(self, *args):
        images = list(args[:self.n_cam])
        proprio = args[self.n_cam] if self.has_proprio else None
        return self.enc(images, proprio, args[-1])


class DecoderExport(nn.Module):
    def __init__(self, policy: Policy):
        super().__init__()
        self.dec = policy.decoder
        self.names = [p['name'] for p in decoder_ports(policy.decoder.c)[1]]

    def forward(self, inputs_embeds, position_ids, attention_mask, *rest):
        c = self.dec.c
        past = [(rest[2 * l], rest[2 * l + 1]) for l in range(c.layers)]
        obs_window = rest[2 * c.layers]
        tail = rest[2 * c.layers + 1:]
        bank = [(tail[2 * i], tail[2 * i + 1]) for i in range(len(c.tempo_layers))] or None
        bias = tail[-1] if c.tempo_layers else None
        out = self.dec.forward_contract(inputs_embeds, position_ids, attention_mask, past, obs_window, bank, bias)
        return tuple(out[n] for n in self.names)


def onnx_export(module: nn.Module, args: tuple, path: str, inputs: list[dict], outputs: list[dict]):
    kwargs = dict(input_names=[p['name'] for p in inputs], output_names=[p['name'] for p in outputs],
                  dynamic_axes=dynamic_axes(inputs + outputs), opset_version=OPSET, do_constant_folding=True)
    if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
        kwargs['dynamo'] = False
    torch.onnx.export(module, args, path, **kwargs)


def sha256(path: str) -> str:
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


# ---------------------------------------------------------------------------------------------
# example inputs (export traces and fixtures)


def example_observation(enc: EncoderConfig, instr: bytes, seed: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    images = [torch.randint(0, 256, (1, c.height, c.width, 3), generator=g, dtype=torch.uint8) for c in enc.cameras]
    # float32 values (what the runtime feeds), held in `dtype`
    proprio = torch.rand(1, enc.proprio_size, generator=g).to(dtype) if enc.proprio_size else None
    instruction = torch.tensor([list(instr)], dtype=torch.int64)
    return images, proprio, instruction


def decoder_args(c: DecoderConfig, emb, positions, mask, past, obs_window, bank=None, bias=None):
    args = [emb, positions, mask]
    for k, v in past:
        args += [k, v]
    args.append(torch.tensor(obs_window, dtype=torch.int64))
    if c.tempo_layers:
        for k, v in bank:
            args += [k, v]
        args.append(bias)
    return tuple(args)


def empty_kv(c: DecoderConfig, n: int, length: int, dtype):
    return [(torch.zeros(1, c.kv_heads, length, c.head_dim, dtype=dtype),) * 2 for _ in range(n)]


def export_files(policy: Policy, out: str) -> dict:
    enc_c, dec_c = policy.encoder.c, policy.decoder.c
    os.makedirs(out, exist_ok=True)
    # encoder: trace with a 13-byte instruction (dynamic)
    images, proprio, instruction = example_observation(enc_c, b'trace example', 1)
    enc_in, enc_out = encoder_ports(enc_c)
    args = tuple(images) + ((proprio,) if proprio is not None else ()) + (instruction,)
    onnx_export(EncoderExport(policy), args, os.path.join(out, 'encoder.onnx'), enc_in, enc_out)
    # decoder: trace with S = 7, P = 5, M = 6 (all dynamic)
    g = torch.Generator().manual_seed(2)
    S, P, M = 7, 5, 6
    D, Hkv, Dh = dec_c.hidden_size, dec_c.kv_heads, dec_c.head_dim
    emb = torch.randn(1, S, D, generator=g)
    positions = torch.arange(P, P + S).view(1, S)
    mask = torch.ones(1, P + S, dtype=torch.int64)
    past = [(torch.randn(1, Hkv, P, Dh, generator=g), torch.randn(1, Hkv, P, Dh, generator=g)) for _ in range(dec_c.layers)]
    bank = [(torch.randn(1, Hkv, M, Dh, generator=g), torch.randn(1, Hkv, M, Dh, generator=g)) for _ in dec_c.tempo_layers]
    bias = -torch.rand(1, Hkv, 1, M, generator=g)
    dec_in, dec_out = decoder_ports(dec_c)
    onnx_export(DecoderExport(policy), decoder_args(dec_c, emb, positions, mask, past, 3, bank, bias),
                os.path.join(out, 'model.onnx'), dec_in, dec_out)
    return {'encoder': (enc_in, enc_out), 'decoder': (dec_in, dec_out)}


# ---------------------------------------------------------------------------------------------
# fixtures


def tensor_json(t: torch.Tensor | np.ndarray, dtype: str) -> dict:
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t
    np_dtype = {'float32': '<f4', 'int64': '<i8', 'uint8': '|u1'}[dtype]
    a = np.array(a, dtype=np_dtype, order='C')  # keeps 0-d scalars 0-d (obs_window dims [])
    return {'dtype': dtype, 'dims': list(a.shape), 'b64': base64.b64encode(a.tobytes()).decode()}


def write_fixture(policy: Policy, ports: dict, model_id: str, path: str):
    """Encoder on one observation; decoder on a 2-step sequence (carried: step 2 with past KV and
    some masked past keys; tempo: step 1 with an empty bank, step 2 with step 1's prefix as bank)."""
    enc_c, dec_c = policy.encoder.c, policy.decoder.c
    p64 = Policy(enc_c, dec_c, [(s['name'], s['kind'], s['size'], s['meaning']) for s in policy.segments])
    p64.load_state_dict(policy.state_dict())
    p64 = p64.double().eval()
    enc_in, _ = ports['encoder']
    dec_in, dec_out = ports['decoder']
    fixture = {'id': model_id, 'tolerance': 1e-4, 'encoder': None, 'steps': []}
    embeds = []
    with torch.no_grad():
        for k, instr in enumerate([b'Go to it.', b'Then log in: 42']):
            images, proprio, instruction = example_observation(enc_c, instr, 10 + k, torch.float64)
            emb = p64.encoder(images, proprio, instruction)
            embeds.append(emb)
            if k == 0:
                feeds = {image_input(c.name, enc_c): tensor_json(images[i], 'uint8') for i, c in enumerate(enc_c.cameras)}
                if proprio is not None:
                    feeds['proprio'] = tensor_json(proprio, 'float32')
                feeds['instruction'] = tensor_json(instruction, 'int64')
                fixture['encoder'] = {'inputs': feeds, 'outputs': {'inputs_embeds': tensor_json(emb, 'float32')}}
        embeds = [e.float().double() for e in embeds]  # what a float32 runtime feeds
        S1, S2 = embeds[0].shape[1], embeds[1].shape[1]
        tempo = bool(dec_c.tempo_layers)
        n_mem = len(dec_c.tempo_layers)
        steps = []
        if tempo:
            steps.append(dict(emb=embeds[0], pos=torch.arange(S1).view(1, -1), mask=torch.ones(1, S1, dtype=torch.int64),
                              past=empty_kv(dec_c, dec_c.layers, 0, torch.float64), w=4,
                              bank=empty_kv(dec_c, n_mem, 0, torch.float64),
                              bias=torch.zeros(1, dec_c.kv_heads, 1, 0, dtype=torch.float64)))
        else:
            steps.append(dict(emb=embeds[0], pos=torch.arange(S1).view(1, -1), mask=torch.ones(1, S1, dtype=torch.int64),
                              past=empty_kv(dec_c, dec_c.layers, 0, torch.float64), w=8))
        first = p64.decoder.forward_contract(steps[0]['emb'], steps[0]['pos'], steps[0]['mask'], steps[0]['past'],
                                             torch.tensor(steps[0]['w']), steps[0].get('bank'), steps[0].get('bias'))
        if tempo:
            bank = [(first[f'tempo_prefix.{l}.key'].float().double(), first[f'tempo_prefix.{l}.value'].float().double())
                    for l in dec_c.tempo_layers]
            bias = (tempo_bias_per_gap(dec_c.kv_heads).view(1, -1, 1, 1) * 1.0).expand(1, dec_c.kv_heads, 1, S1).clone()
            bias[..., :3] = -1e9  # three empty slots
            steps.append(dict(emb=embeds[1], pos=torch.arange(S2).view(1, -1), mask=torch.ones(1, S2, dtype=torch.int64),
                              past=empty_kv(dec_c, dec_c.layers, 0, torch.float64), w=4, bank=bank, bias=bias.float().double()))
        else:
            past = [(first[f'present.{l}.key'].float().double(), first[f'present.{l}.value'].float().double())
                    for l in range(dec_c.layers)]
            mask = torch.ones(1, S1 + S2, dtype=torch.int64)
            mask[0, 2:S1:3] = 0  # pruned past keys
            steps.append(dict(emb=embeds[1], pos=torch.arange(S1, S1 + S2).view(1, -1), mask=mask, past=past, w=5))
        for st in steps:
            out = p64.decoder.forward_contract(st['emb'], st['pos'], st['mask'], st['past'], torch.tensor(st['w']),
                                               st.get('bank'), st.get('bias'))
            args = decoder_args(dec_c, st['emb'], st['pos'], st['mask'], st['past'], st['w'], st.get('bank'), st.get('bias'))
            feeds = {p['name']: tensor_json(a, p['dtype']) for p, a in zip(dec_in, args)}
            outs = {p['name']: tensor_json(out[p['name']], 'float32') for p in dec_out}
            fixture['steps'].append({'inputs': feeds, 'outputs': outs})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(fixture, f)


# ---------------------------------------------------------------------------------------------
# manifest


def flat_provenance(ck: dict) -> dict:
    prov = {k: v for k, v in ck['provenance'].items() if isinstance(v, (str, int, float))}
    prov['generator'] = 'train/train.py (behaviour cloning) + train/export.py'
    m = ck['metrics']
    for key in ('epochs', 'steps', 'train_seconds', 'final_loss'):
        if isinstance(m.get(key), (int, float)):
            prov[key] = m[key]
    for tag, metrics in (('heldout', m['heldout']), ('heldout_memoryless', m['heldout_memoryless'])):
        for k, v in metrics.items():
            if isinstance(v, float):
                prov[f'{tag}.{k}'] = round(v, 4)
    return prov


def write_manifest(policy: Policy, ck: dict, ports: dict, out: str) -> dict:
    enc_c, dec_c = policy.encoder.c, policy.decoder.c
    dec_in, dec_out = ports['decoder']
    enc_in, enc_out = ports['encoder']
    layout = [{'kind': 'visual', 'camera': c.name, 'input': image_input(c.name, enc_c), 'tokens': c.tokens,
               'grid': list(c.grid), 'order': 'row-major'} for c in enc_c.cameras]
    if enc_c.proprio_size:
        layout.append({'kind': 'proprio', 'tokens': 1, 'size': enc_c.proprio_size})
    layout.append({'kind': 'text', 'source': 'instruction', 'tokens': 'instruction UTF-8 bytes',
                   'maxTokens': enc_c.instruction_max_bytes})
    idx = ck.get('dataset_index', {})
    manifest = {
        'id': ck['id'],
        'file': 'model.onnx',
        'sha256': sha256(os.path.join(out, 'model.onnx')),
        'architecture': 'decoder',
        'layers': dec_c.layers, 'heads': dec_c.heads, 'kvHeads': dec_c.kv_heads, 'headDim': dec_c.head_dim,
        'hiddenSize': dec_c.hidden_size, 'intermediateSize': dec_c.intermediate_size,
        # the decoder's output width (logits [batch, seq, vocabSize] = the action head); the
        # instruction's byte vocabulary (256) belongs to the encoder
        'vocabSize': dec_c.action_size,
        'ropeBase': dec_c.rope_base, 'rmsNormEps': dec_c.rms_norm_eps,
        'maxPosition': MAX_POSITION,
        'tokenizer': {'kind': 'bytes'},
        'inputs': dec_in, 'outputs': dec_out,
        'ports': {'inputIds': False, 'inputsEmbeds': True, 'obsWindow': True, 'attnWindow': True,
                  'attnTotal': True, 'hiddenNorm': True, 'tempo': bool(dec_c.tempo_layers)},
        'tempoLayers': list(dec_c.tempo_layers),
        'provenance': flat_provenance(ck),
        # --- extensions for the agents' adapters -----------------------------------------------
        'domain': idx.get('domain'),
        'memoryRegime': ck['regime'],
        'encoder': {
            'file': 'encoder.onnx', 'sha256': sha256(os.path.join(out, 'encoder.onnx')),
            'inputs': enc_in, 'outputs': enc_out,
            'cameras': [{'name': c.name, 'input': image_input(c.name, enc_c), 'height': c.height, 'width': c.width,
                         'visualTokens': c.tokens, 'grid': list(c.grid)} for c in enc_c.cameras],
            'imageFormat': 'RGB8 [batch, height, width, 3] uint8, row-major (the sims\' frames as they are)',
            'proprioSize': enc_c.proprio_size,
            'instructionMaxBytes': enc_c.instruction_max_bytes,
            'instructionVocab': 256,
        },
        'prefixLayout': layout,
        'actionHead': {'size': dec_c.action_size, 'readAt': 'logits of the last prefix position',
                       'segments': policy.segments},
        'tempo': {'frames': 8, 'beta': 'auto', 'tokenScale': 1,
                  'note': 'trained with the bank of the last 8 frames and memory/policies/tempofit.ts bias'}
        if dec_c.tempo_layers else None,
        'training': {'provenance': ck['provenance'], 'metrics': ck['metrics'], 'dataset': idx},
    }
    with open(os.path.join(out, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
    return manifest


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument('--ckpt', required=True)
    ap.add_argument('--out', required=True, help='models/<id>')
    ap.add_argument('--fixture', help='test/fixtures/<id>.json')
    ap.add_argument('--log', help='training log to copy as train-log.txt')
    args = ap.parse_args(argv)
    policy, ck = load_policy(args.ckpt)
    ports = export_files(policy, args.out)
    manifest = write_manifest(policy, ck, ports, args.out)
    if args.log:
        shutil.copyfile(args.log, os.path.join(args.out, 'train-log.txt'))
    if args.fixture:
        write_fixture(policy, ports, ck['id'], args.fixture)
    sizes = {f: os.path.getsize(os.path.join(args.out, f)) for f in ('encoder.onnx', 'model.onnx')}
    print(f"export {ck['id']}: encoder.onnx {sizes['encoder.onnx']} B, model.onnx {sizes['model.onnx']} B, "
          f"action head {manifest['actionHead']['size']} ({', '.join(s['name'] for s in policy.segments)}), "
          f"tempoLayers {manifest['tempoLayers']}" + (f", fixture {os.path.getsize(args.fixture)} B" if args.fixture else ''),
          flush=True)


if __name__ == '__main__':
    main()
