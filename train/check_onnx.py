"""Runs each exported model with onnxruntime (Python, CPU) on its fixture and prints the worst
relative error per model (max|a - b| / max(1, max|b|), as test/train/onnx-parity.test.ts). A quick
check on the GPU machine; the authoritative check is the ORT-web test in Node.

  python3 train/check_onnx.py --models models --fixtures test/fixtures gui-carried gui-tempo ...
Exits 1 if any error exceeds 1e-4; prints 'skipped' (exit 0) when onnxruntime is not installed.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys

import numpy as np


def arr(t: dict) -> np.ndarray:
    dt = {'float32': '<f4', 'int64': '<i8', 'uint8': '|u1'}[t.get('dtype', 'float32')]
    return np.frombuffer(base64.b64decode(t['b64']), dtype=dt).reshape(t['dims'])


def worst(session, io: dict) -> float:
    names = list(io['outputs'])
    got = session.run(names, {k: arr(v) for k, v in io['inputs'].items()})
    err = 0.0
    for name, a in zip(names, got):
        b = arr(io['outputs'][name])
        assert a.shape == b.shape, (name, a.shape, b.shape)
        if b.size:
            err = max(err, float(np.abs(a - b).max()) / max(1.0, float(np.abs(b).max())))
    return err


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--models', default='models')
    ap.add_argument('--fixtures', default='test/fixtures')
    ap.add_argument('ids', nargs='+')
    args = ap.parse_args(argv)
    try:
        import onnxruntime as ort
    except ImportError:
        print('check_onnx: skipped (no onnxruntime)')
        return 0
    bad = 0
    for mid in args.ids:
        d = os.path.join(args.models, mid)
        m = json.load(open(os.path.join(d, 'manifest.json')))
        fx = json.load(open(os.path.join(args.fixtures, f'{mid}.json')))
        enc = ort.InferenceSession(os.path.join(d, m['encoder']['file']), providers=['CPUExecutionProvider'])
        dec = ort.InferenceSession(os.path.join(d, m['file']), providers=['CPUExecutionProvider'])
        errs = [worst(enc, fx['encoder'])] + [worst(dec, s) for s in fx['steps']]
        ok = max(errs) <= 1e-4
        bad += not ok
        print(f"check_onnx {mid}: onnxruntime {ort.__version__} vs torch, worst rel err "
              f"{max(errs):.2e} ({'ok' if ok else 'FAIL'})")
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
