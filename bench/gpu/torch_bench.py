"""GPU bench, torch side (bench/gpu/run.sh runs it on the GPU machine).

  python3 bench/gpu/torch_bench.py prepare --work DIR [--models a,b,c]
      For each model: the torch Decoder (train/model.py) with the ONNX model's weights
      (trained models: read back from models/<id>/model.onnx; the synthetic decoder: seeded init,
      exported to DIR/models/<id>/ with a manifest), the step's inputs (one new frame's prefix of S
      tokens against a memory of P tokens, seeded) written to DIR/inputs/<id>.{json,bin} for the
      Node side, and the reference logits (float64 on the CPU) for the ORT parity check.
  python3 bench/gpu/torch_bench.py time --work DIR --out FILE [--iters N]
      Times the same step in torch eager CUDA fp32 (forward_contract: prefill + action head, then the
      action argmax), torch.cuda.synchronize() before each clock read. Writes FILE (JSON).

Input file layout (little-endian float32): inputs_embeds [S, D], then per layer l:
past key [Hkv, P, Dh], past value [Hkv, P, Dh]. position_ids are P … P+S−1, attention mask all ones.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import types

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'train'))
from model import MASKED_SCORE, Decoder, DecoderConfig, rope_tables  # noqa: E402

SYNTH_ID = 'synth-12x768'
SYNTH = dict(hidden_size=768, layers=12, heads=12, kv_heads=4, intermediate_size=2048, action_size=256)
# Step shapes per model: S prefix tokens (one frame) against P memory tokens (8 frames' worth).
SHAPES = {'robot-carried': (53, 8 * 53), 'gui-carried': (105, 8 * 105), SYNTH_ID: (128, 1024)}
DEFAULT_MODELS = ['robot-carried', 'gui-carried', SYNTH_ID]


def model_dir(work: str, mid: str) -> str:
    return os.path.join(work, 'models', mid) if mid == SYNTH_ID else os.path.join(ROOT, 'models', mid)


def config_from_manifest(m: dict) -> DecoderConfig:
    return DecoderConfig(hidden_size=m['hiddenSize'], layers=m['layers'], heads=m['heads'], kv_heads=m['kvHeads'],
                         intermediate_size=m['intermediateSize'], rope_base=float(m['ropeBase']),
                         rms_norm_eps=float(m['rmsNormEps']), action_size=m['vocabSize'],
                         tempo_layers=list(m.get('tempoLayers') or []))


def load_from_onnx(mdir: str) -> tuple[Decoder, dict]:
    """A torch Decoder with the weights of mdir/model.onnx (a train/export.py export): named
    initializers (norms, head bias) by name, the linear layers' MatMul initializers (W^T) in graph
    order: per block wq, wk, wv, wo, w_gate, w_up, w_down, then the head."""
    import onnx
    from onnx import numpy_helper
    manifest = json.load(open(os.path.join(mdir, 'manifest.json')))
    dec = Decoder(config_from_manifest(manifest))
    g = onnx.load(os.path.join(mdir, 'model.onnx')).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    state = {}
    for k in dec.state_dict():
        if f'dec.{k}' in inits:
            state[k] = torch.from_numpy(inits[f'dec.{k}'].copy())
    # MatMul weights in the order the graph uses them
    order = []
    for node in g.node:
        if node.op_type == 'MatMul':
            for name in node.input:
                if name in inits and name not in order and not name.startswith('dec.'):
                    order.append(name)
    linear = [f'blocks.{l}.{w}.weight' for l in range(dec.c.layers)
              for w in ('wq', 'wk', 'wv', 'wo', 'w_gate', 'w_up', 'w_down')] + ['head.weight']
    if len(order) != len(linear):
        raise RuntimeError(f'{mdir}: {len(order)} MatMul initializers, expected {len(linear)}')
    for name, key in zip(order, linear):
        w = torch.from_numpy(inits[name].copy()).t().contiguous()
        want = dec.state_dict()[key].shape
        if tuple(w.shape) != tuple(want):
            raise RuntimeError(f'{mdir}: {name} → {key}: shape {tuple(w.shape)} != {tuple(want)}')
        state[key] = w
    missing = [k for k in dec.state_dict() if k not in state]
    if missing:
        raise RuntimeError(f'{mdir}: no ONNX weight for {missing}')
    dec.load_state_dict(state)
    return dec.eval(), manifest


def export_synth(work: str) -> None:
    """Seeded synthetic decoder (SYNTH) → work/models/synth-12x768/{model.onnx, manifest.json}."""
    import export as E  # train/export.py
    out = model_dir(work, SYNTH_ID)
    if os.path.exists(os.path.join(out, 'manifest.json')):
        return
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(20261130)
    c = DecoderConfig(**SYNTH)
    dec = Decoder(c).eval()
    # norm weights drawn around 1 (trained norms are not all ones): identical initializers would be
    # merged by the ONNX exporter, and load_from_onnx reads the norms back by name
    with torch.no_grad():
        for name, prm in dec.named_parameters():
            if name.endswith('norm.weight'):
                prm.copy_(1 + 0.1 * torch.randn(prm.shape))
    policy = types.SimpleNamespace(decoder=dec)
    g = torch.Generator().manual_seed(2)
    S, P = 7, 5
    D, Hkv, Dh = c.hidden_size, c.kv_heads, c.head_dim
    emb = torch.randn(1, S, D, generator=g)
    positions = torch.arange(P, P + S).view(1, S)
    mask = torch.ones(1, P + S, dtype=torch.int64)
    past = [(torch.randn(1, Hkv, P, Dh, generator=g), torch.randn(1, Hkv, P, Dh, generator=g)) for _ in range(c.layers)]
    dec_in, dec_out = E.decoder_ports(c)
    path = os.path.join(out, 'model.onnx')
    E.onnx_export(E.DecoderExport(policy), E.decoder_args(c, emb, positions, mask, past, 3), path, dec_in, dec_out)
    manifest = {
        'id': SYNTH_ID, 'file': 'model.onnx', 'sha256': hashlib.sha256(open(path, 'rb').read()).hexdigest(),
        'architecture': 'decoder', 'layers': c.layers, 'heads': c.heads, 'kvHeads': c.kv_heads,
        'headDim': c.head_dim, 'hiddenSize': c.hidden_size, 'intermediateSize': c.intermediate_size,
        'vocabSize': c.action_size, 'ropeBase': c.rope_base, 'rmsNormEps': c.rms_norm_eps,
        'maxPosition': 65536, 'tokenizer': {'kind': 'bytes'}, 'inputs': dec_in, 'outputs': dec_out,
        'ports': {'inputIds': False, 'inputsEmbeds': True, 'obsWindow': True, 'attnWindow': True,
                  'attnTotal': True, 'hiddenNorm': True, 'tempo': False},
        'tempoLayers': [], 'provenance': {'generator': 'bench/gpu/torch_bench.py export_synth', 'seed': 20261130,
                                          'torch': torch.__version__},
    }
    json.dump(manifest, open(os.path.join(out, 'manifest.json'), 'w'), indent=2)
    torch.save(dec.state_dict(), os.path.join(out, 'state.pt'))


class StaticStepExport(torch.nn.Module):
    """The decoder step with float inputs only (a fixed-capacity memory layout): the host turns
    positions, the mask over empty slots and the observation window into tables, so the graph has
    no int64 or float64 arithmetic left (ORT's WebGPU EP has no float64 kernels and places int64
    shape-like math on the CPU EP, which graph capture refuses). Inputs, in order: inputs_embeds
    [1, S, D], rope_cos and rope_sin [1, 1, S, Dh] (model.rope_tables), attention_bias [1, 1, S, T]
    (0 = attend, MASKED_SCORE = masked: causal and empty slots), window_weight [1, 1, S, 1] (1 on the
    last obs_window queries), past_key_values.{l}.key|value [1, Hkv, P, Dh]. Outputs as the contract."""

    def __init__(self, dec: Decoder):
        super().__init__()
        self.dec = dec
        self.names = [p['name'] for p in static_ports(dec.c)[1]]

    def forward(self, inputs_embeds, rope_cos, rope_sin, attention_bias, window_weight, *past_flat):
        past = [(past_flat[2 * l], past_flat[2 * l + 1]) for l in range(self.dec.c.layers)]
        out = self.dec.forward_core(inputs_embeds, rope_cos, rope_sin, attention_bias, window_weight, past)
        return tuple(out[n] for n in self.names)


def static_ports(c: DecoderConfig) -> tuple[list[dict], list[dict]]:
    """The fixed-capacity export's ports: the contract's float inputs plus the four tables that
    replace position_ids, attention_mask and obs_window (StaticStepExport); outputs unchanged."""
    import export as E  # train/export.py
    dec_in, dec_out = E.decoder_ports(c)
    Dh = c.head_dim
    tables = [{'name': 'rope_cos', 'dtype': 'float32', 'dims': ['batch', 1, 'seq', Dh]},
              {'name': 'rope_sin', 'dtype': 'float32', 'dims': ['batch', 1, 'seq', Dh]},
              {'name': 'attention_bias', 'dtype': 'float32', 'dims': ['batch', 1, 'seq', 'total']},
              {'name': 'window_weight', 'dtype': 'float32', 'dims': [1, 1, 'seq', 1]}]
    past = [p for p in dec_in if p['name'].startswith('past_key_values.')]
    return [dec_in[0]] + tables + past, dec_out


def static_tables(c: DecoderConfig, S: int, P: int, obs_window: int = 8):
    """rope_cos, rope_sin, attention_bias, window_weight for S new tokens at positions P..P+S−1
    against P memory slots, all filled (the bench step)."""
    T = P + S
    cos, sin = rope_tables(torch.arange(P, P + S).view(1, S), c.head_dim, c.rope_base)
    allowed = torch.arange(T).view(1, T) <= (torch.arange(S).view(S, 1) + P)
    bias = torch.where(allowed, torch.tensor(0.0), torch.tensor(MASKED_SCORE)).view(1, 1, S, T)
    window = (torch.arange(S) >= S - obs_window).to(torch.float32).view(1, 1, S, 1)
    return cos, sin, bias, window


def fold_constants(path: str) -> str | None:
    """Folds the graph's constant subgraphs (the exporter leaves the GQA expand's shape math as
    ConstantOfShape/Equal/Where on constants) with onnxruntime's basic, EP-independent level, in
    place, so no shape node is left for ORT-web to place on the CPU EP. Returns what folded it, or
    None where Python's onnxruntime is missing (ORT-web then folds at session creation)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = path + '.folded'
    try:
        ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
        os.replace(path + '.folded', path)
    finally:
        if os.path.exists(path + '.folded'):
            os.remove(path + '.folded')
    return f'onnxruntime {ort.__version__} (basic level)'


def export_static(work: str, mid: str, dec: Decoder, S: int, P: int) -> str:
    """The fixed-capacity step (StaticStepExport) exported with every shape fixed to the bench
    step's (S new tokens against P memory tokens; no dynamic axes) → work/static/<mid>/{model.onnx,
    manifest.json}, and its four tables → work/inputs/<mid>.static.bin (float32, in port order).
    Constant folding removes the shape arithmetic, and with float-only inputs every node can sit on
    the WebGPU EP, which ORT's graph capture needs. Returns the folder that holds <mid>/."""
    import inspect
    import export as E  # train/export.py
    if dec.c.tempo_layers:
        raise ValueError(f'{mid} is a TempoFit model: the fixed-capacity export has no bank inputs')
    out = os.path.join(work, 'static', mid)
    os.makedirs(out, exist_ok=True)
    c = dec.c
    emb, past = step_inputs(c, S, P)
    tables = static_tables(c, S, P)
    with open(os.path.join(work, 'inputs', f'{mid}.static.bin'), 'wb') as f:
        for t in tables:
            f.write(t.numpy().astype('<f4').tobytes())
    dec_in, dec_out = static_ports(c)
    path = os.path.join(out, 'model.onnx')
    kwargs = dict(input_names=[p['name'] for p in dec_in], output_names=[p['name'] for p in dec_out],
                  opset_version=E.OPSET, do_constant_folding=True)  # no dynamic_axes: every shape static
    if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
        kwargs['dynamo'] = False
    args = (emb, *tables, *[t for kv in past for t in kv])
    with torch.no_grad():
        torch.onnx.export(StaticStepExport(dec), args, path, **kwargs)
    folded = fold_constants(path)
    manifest = json.load(open(os.path.join(model_dir(work, mid), 'manifest.json')))
    manifest.update({'file': 'model.onnx', 'sha256': hashlib.sha256(open(path, 'rb').read()).hexdigest(),
                     'inputs': dec_in, 'outputs': dec_out, 'staticShapes': {'S': S, 'P': P},
                     'staticTables': [p['name'] for p in dec_in[1:5]], 'constantsFoldedBy': folded})
    json.dump(manifest, open(os.path.join(out, 'manifest.json'), 'w'), indent=2)
    return os.path.join(work, 'static')


def step_inputs(c: DecoderConfig, S: int, P: int, seed: int = 7):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(1, S, c.hidden_size, generator=g)
    past = [(torch.randn(1, c.kv_heads, P, c.head_dim, generator=g), torch.randn(1, c.kv_heads, P, c.head_dim, generator=g))
            for _ in range(c.layers)]
    return emb, past


def run_step(dec: Decoder, emb, past, P: int):
    S = emb.shape[1]
    dev = emb.device
    positions = torch.arange(P, P + S, device=dev).view(1, S)
    mask = torch.ones(1, P + S, dtype=torch.int64, device=dev)
    out = dec.forward_contract(emb, positions, mask, past, torch.tensor(8, device=dev))
    logits = out['logits'][0, -1]
    return logits, int(torch.argmax(logits))


def prepare(work: str, models: list[str]) -> None:
    os.makedirs(os.path.join(work, 'inputs'), exist_ok=True)
    for mid in models:
        t0 = time.time()
        if mid == SYNTH_ID:
            export_synth(work)
        dec, manifest = load_from_onnx(model_dir(work, mid))
        S, P = SHAPES.get(mid, (64, 512))
        emb, past = step_inputs(dec.c, S, P)
        with open(os.path.join(work, 'inputs', f'{mid}.bin'), 'wb') as f:
            f.write(emb.numpy().astype('<f4').tobytes())
            for k, v in past:
                f.write(k.numpy().astype('<f4').tobytes())
                f.write(v.numpy().astype('<f4').tobytes())
        try:  # before the float64 reference below (Module.double() converts in place)
            static_dir = export_static(work, mid, dec, S, P)
        except Exception as e:  # the static rows fail on their own; the others go on
            static_dir = None
            print(f'static export of {mid} failed: {e!r}', flush=True)
        with torch.no_grad():
            ref, _ = run_step(dec.double(), emb.double(), [(k.double(), v.double()) for k, v in past], P)
        meta = {'model': mid, 'dir': model_dir(work, mid), 'staticDir': static_dir, 'S': S, 'P': P, 'hiddenSize': dec.c.hidden_size,
                'layers': dec.c.layers, 'kvHeads': dec.c.kv_heads, 'headDim': dec.c.head_dim,
                'vocabSize': dec.c.action_size, 'params': sum(p.numel() for p in dec.parameters()),
                'torchLogitsFloat64': ref.tolist()}
        json.dump(meta, open(os.path.join(work, 'inputs', f'{mid}.json'), 'w'))
        print(f'prepared {mid}: S={S} P={P} params={meta["params"]:,} ({time.time() - t0:.1f} s)', flush=True)


def time_torch(work: str, out: str, iters: int, models: list[str]) -> None:
    results = []
    for mid in models:
        try:
            meta = json.load(open(os.path.join(work, 'inputs', f'{mid}.json')))
            dec, _ = load_from_onnx(model_dir(work, mid))
            dec = dec.float().cuda()
            S, P = meta['S'], meta['P']
            emb, past = step_inputs(dec.c, S, P)
            emb = emb.cuda()
            past = [(k.cuda(), v.cuda()) for k, v in past]
            times = []
            with torch.no_grad():
                for i in range(5 + iters):
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    logits, action = run_step(dec, emb, past, P)
                    torch.cuda.synchronize()
                    if i >= 5:
                        times.append((time.perf_counter() - t0) * 1e3)
            ref = np.array(meta['torchLogitsFloat64'])
            got = logits.double().cpu().numpy()
            rel = float(np.max(np.abs(got - ref)) / max(1.0, float(np.max(np.abs(ref)))))
            results.append({'model': mid, 'config': 'torch-cuda-eager', 'ok': True, 'S': S, 'P': P,
                            'stepMs': {'p50': float(np.median(times)), 'p90': float(np.percentile(times, 90)),
                                       'min': float(np.min(times))}, 'iters': iters,
                            'relErrVsFloat64': rel, 'device': torch.cuda.get_device_name(0), 'torch': torch.__version__})
            print(f'torch {mid}: p50 {np.median(times):.2f} ms (rel err vs float64 {rel:.1e})', flush=True)
        except Exception as e:  # one failing model must not lose the others
            results.append({'model': mid, 'config': 'torch-cuda-eager', 'ok': False, 'error': repr(e)})
            print(f'torch {mid}: FAILED {e!r}', flush=True)
    json.dump({'results': results}, open(out, 'w'), indent=2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('command', choices=['prepare', 'time'])
    ap.add_argument('--work', required=True)
    ap.add_argument('--out')
    ap.add_argument('--iters', type=int, default=30)
    ap.add_argument('--models', default=','.join(DEFAULT_MODELS))
    a = ap.parse_args()
    models = [m for m in a.models.split(',') if m]
    if a.command == 'prepare':
        prepare(a.work, models)
    else:
        time_torch(a.work, a.out or os.path.join(a.work, 'torch.json'), a.iters, models)


if __name__ == '__main__':
    main()
