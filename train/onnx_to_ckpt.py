"""Rebuilds a training checkpoint (train.py's format) from a committed model folder, so that
training can continue from the models under models/ when the float32 checkpoint of the run that
made them is gone (the GPU machine keeps nothing between sessions; checkpoints are git-ignored).

  /usr/bin/python3 train/onnx_to_ckpt.py --model models/robot-carried --out train/work/ckpt/robot-carried.pt

Every weight of the exported graphs is mapped back to its torch parameter:
- named initializers (`enc.x` / `dec.x`) are the parameters themselves (`encoder.x` / `decoder.x`);
- linear weights that torch.onnx.export folded into `onnx::MatMul_N` initializers are found
  through the MatMul node that consumes them (`/wq_2/MatMul` -> `decoder.blocks.2.wq.weight`,
  `/enc/visual_mlp/visual_mlp.1/MatMul` -> `encoder.visual_mlp.1.weight`) and transposed back
  ([in, out] in ONNX, [out, in] in torch).
Parameters that exist only in training (the GUI reading head) are not in the graphs; they keep
their fresh initialisation and are listed. Any other unmatched parameter or initializer is an
error (exit 1), never a silent gap; so is a graph file whose sha256 differs from the manifest's
(another model's file of the same shape would otherwise map cleanly). Check the result by exporting
it again (train/export.py --fixture) and comparing with the committed fixture: for gui-carried and
robot-carried the re-exported outputs equal test/fixtures/<id>.json bit for bit on this machine
(test/train/onnx-to-ckpt.test.ts allows 1e-6, for another torch build).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
from train import build_policy  # noqa: E402

TRAINING_ONLY = ('reading.',)  # parameters of heads used only as training losses


def matmul_param(node_name: str) -> str | None:
    """`/wq_2/MatMul` -> `decoder.blocks.2.wq.weight`; `/head/MatMul` -> `decoder.head.weight`;
    `/enc/visual_mlp/visual_mlp.1/MatMul` -> `encoder.visual_mlp.1.weight`."""
    m = re.fullmatch(r'/(wq|wk|wv|wo|w_gate|w_up|w_down)(?:_(\d+))?/MatMul', node_name)
    if m:
        return f'decoder.blocks.{int(m.group(2) or 0)}.{m.group(1)}.weight'
    if node_name == '/head/MatMul':
        return 'decoder.head.weight'
    m = re.fullmatch(r'/enc/(.+)/MatMul', node_name)
    if m:
        return 'encoder.' + scope_path(m.group(1)) + '.weight'
    return None


def scope_path(scope: str) -> str:
    """torch.onnx's module scope `visual_mlp/visual_mlp.1` (a Sequential's child repeats its
    parent) or `stems.0/norm` -> the state_dict path `visual_mlp.1` / `stems.0.norm`."""
    parts: list[str] = []
    for p in scope.split('/'):
        if parts and p.startswith(parts[-1] + '.'):
            parts[-1] = p
        else:
            parts.append(p)
    return '.'.join(parts)


def affine_param(node: onnx.NodeProto) -> str | None:
    """A norm's affine weight/bias that the exporter folded into a Mul/Add constant
    (`/enc/stems.0/norm/Mul` + `onnx::Mul_81` [C,1,1] -> `encoder.stems.0.norm.weight`)."""
    m = re.fullmatch(r'/enc/(.+)/(Mul|Add)', node.name)
    if not m:
        return None
    return 'encoder.' + scope_path(m.group(1)) + ('.weight' if m.group(2) == 'Mul' else '.bias')


def graph_weights(path: str, prefix_map: dict[str, str]) -> dict[str, np.ndarray]:
    g = onnx.load(path).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    out: dict[str, np.ndarray] = {}
    for name, a in inits.items():
        for onnx_prefix, torch_prefix in prefix_map.items():
            if name.startswith(onnx_prefix):
                out[torch_prefix + name[len(onnx_prefix):]] = a
    for node in g.node:
        if node.op_type in ('Mul', 'Add'):
            for x in node.input:
                if x.startswith(('onnx::Mul', 'onnx::Add')) and x in inits and inits[x].ndim == 3:
                    p = affine_param(node)
                    if p is None:
                        raise SystemExit(f'{path}: no parameter for {node.op_type} node {node.name} ({x})')
                    out[p] = inits[x].reshape(-1)
            continue
        if node.op_type != 'MatMul':
            continue
        for x in node.input:
            if x.startswith('onnx::MatMul') and x in inits:
                p = matmul_param(node.name)
                if p is None:
                    raise SystemExit(f'{path}: no parameter for MatMul node {node.name} ({x})')
                if p in out:
                    raise SystemExit(f'{path}: {p} found twice')
                out[p] = inits[x].T
    return out


def fail(message: str) -> int:
    print(f'onnx_to_ckpt: {message}', file=sys.stderr)
    return 1


def checked_file(folder: str, name: str, sha: str | None) -> str:
    """`folder/name`, which must exist and hash to the manifest's `sha` (hex). @throws ValueError"""
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise ValueError(f'{path} is missing')
    if not sha:
        raise ValueError(f'the manifest gives no sha256 for {name}: the file cannot be checked')
    got = hashlib.sha256(open(path, 'rb').read()).hexdigest()
    if got != sha:
        raise ValueError(f'{path}: sha256 {got[:12]}… differs from the manifest\'s {sha[:12]}… '
                         '(another model\'s file, or a damaged one)')
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', required=True, help='a models/<id> folder (manifest.json, encoder.onnx, model.onnx)')
    ap.add_argument('--out', required=True, help='checkpoint file to write (parent folders are created)')
    args = ap.parse_args(argv)
    manifest_path = os.path.join(args.model, 'manifest.json')
    if not os.path.isfile(manifest_path):
        return fail(f'{manifest_path} is missing (--model must be a trained model folder, e.g. models/robot-carried)')
    try:
        m = json.load(open(manifest_path))
    except ValueError as e:
        return fail(f'{manifest_path} is not JSON: {e}')
    t = m.get('training')
    if not isinstance(t, dict) or not all(k in t for k in ('dataset', 'provenance', 'metrics')) or 'memoryRegime' not in m:
        return fail(f'{manifest_path} has no training record (training.dataset/provenance/metrics, memoryRegime): '
                    'only models trained by train/train.py and exported by train/export.py can be rebuilt')
    if os.path.isdir(args.out) or args.out.endswith(os.sep):
        return fail(f'--out {args.out} is a folder; give a file name, e.g. {os.path.join(args.out, m["id"] + ".pt")}')
    try:
        enc_path = checked_file(args.model, m['encoder']['file'], m['encoder'].get('sha256'))
        dec_path = checked_file(args.model, m['file'], m.get('sha256'))
    except ValueError as e:
        return fail(str(e))
    idx = m['training']['dataset']
    regime = m['memoryRegime']
    policy = build_policy(idx, regime, m['hiddenSize'], m['layers'], m['encoder']['instructionMaxBytes'])
    sd = policy.state_dict()
    w = graph_weights(enc_path, {'enc.': 'encoder.'})
    w.update(graph_weights(dec_path, {'dec.': 'decoder.'}))
    missing, unused = [], sorted(set(w) - set(sd))
    for k, t in sd.items():
        if k in w:
            a = torch.from_numpy(np.array(w[k], copy=True)).to(t.dtype)
            if tuple(a.shape) != tuple(t.shape):
                raise SystemExit(f'{k}: shape {tuple(a.shape)} in the graph, {tuple(t.shape)} in the model')
            sd[k] = a
        elif not k.startswith(TRAINING_ONLY):
            missing.append(k)
    if missing or unused:
        raise SystemExit(f'not mapped: parameters {missing}, initializers {unused}')
    policy.load_state_dict(sd)
    fresh = [k for k in sd if k.startswith(TRAINING_ONLY)]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save({
        'id': m['id'], 'regime': regime,
        'encoder': policy.encoder.c.to_dict(), 'decoder': policy.decoder.c.to_dict(),
        'segments': policy.segments, 'state_dict': policy.state_dict(),
        'provenance': {**m['training']['provenance'], 'rebuilt_from': os.path.abspath(args.model),
                       'rebuilt_sha256': m['sha256']},
        'metrics': m['training']['metrics'],
        'dataset_index': idx,
    }, args.out)
    print(f'onnx_to_ckpt {m["id"]}: {len(w)} weights mapped, training-only left fresh: {fresh or "none"} -> {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
