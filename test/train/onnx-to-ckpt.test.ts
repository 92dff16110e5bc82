/**
 * @module train/onnx_to_ckpt.py: a checkpoint rebuilt from the committed `models/robot-carried`
 * folder, exported again by train/export.py, reproduces the committed fixture's outputs (computed
 * by torch when the model was trained) within 1e-6 (max|a − b| / max(1, max|b|)); a folder whose
 * model.onnx is another model's file of the same shape is refused (sha256 against the manifest)
 * and writes nothing. Needs a python3 with torch (≥ 1.13); without one it SKIPS loudly, as
 * byom.test.ts.
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { relErr } from '../models/harness.ts'
import { findPython } from '../python.ts'
import { fixtureF32, type FixtureTensor } from './fixture-tensor.ts'

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const PYTHON = findPython('torch, onnx')
if (!PYTHON) console.warn('\n*** test/train/onnx-to-ckpt.test.ts: NO python3 WITH torch + onnx: the checkpoint-rebuild test is SKIPPED ***\n')

const tmp = mkdtempSync(path.join(tmpdir(), 'stepkv-o2c-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const py = (args: string[]) => spawnSync(PYTHON!, args, { cwd: ROOT, encoding: 'utf8', timeout: 240_000 })

describe.skipIf(!PYTHON)('train/onnx_to_ckpt.py', () => {
  it('rebuilds robot-carried so that a re-export reproduces the committed fixture', () => {
    const ckpt = path.join(tmp, 'ckpt', 'robot-carried.pt')
    const rebuilt = py(['train/onnx_to_ckpt.py', '--model', 'models/robot-carried', '--out', ckpt])
    expect(rebuilt.status, rebuilt.stderr.slice(-2000)).toBe(0)
    expect(rebuilt.stdout).toMatch(/63 weights mapped/)
    const fixture = path.join(tmp, 'fixture.json')
    const exported = py(['train/export.py', '--ckpt', ckpt, '--out', path.join(tmp, 'model'), '--fixture', fixture])
    expect(exported.status, exported.stderr.slice(-2000)).toBe(0)
    const want = JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/robot-carried.json'), 'utf8'))
    const got = JSON.parse(readFileSync(fixture, 'utf8'))
    const pairs: [string, FixtureTensor, FixtureTensor][] = []
    for (const [name, t] of Object.entries(want.encoder.outputs)) pairs.push([`encoder ${name}`, got.encoder.outputs[name], t as FixtureTensor])
    want.steps.forEach((s: { inputs: Record<string, FixtureTensor>; outputs: Record<string, FixtureTensor> }, i: number) => {
      for (const [name, t] of Object.entries(s.inputs)) expect(got.steps[i].inputs[name].b64, `step ${i} input ${name}`).toBe(t.b64)
      for (const [name, t] of Object.entries(s.outputs)) pairs.push([`step ${i} ${name}`, got.steps[i].outputs[name], t])
    })
    expect(pairs.length).toBeGreaterThan(20)
    for (const [name, a, b] of pairs) expect(relErr(fixtureF32(a), fixtureF32(b)), name).toBeLessThanOrEqual(1e-6)
  }, 240_000)

  it('refuses a folder whose model.onnx is another model’s file, writing nothing', () => {
    const folder = path.join(tmp, 'swapped')
    cpSync(path.join(ROOT, 'models/robot-carried'), folder, { recursive: true })
    copyFileSync(path.join(ROOT, 'models/robot-tempo/model.onnx'), path.join(folder, 'model.onnx'))
    const out = path.join(tmp, 'swapped.pt')
    const r = py(['train/onnx_to_ckpt.py', '--model', folder, '--out', out])
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/model\.onnx: sha256 .* differs from the manifest/)
    expect(existsSync(out)).toBe(false)
  }, 60_000)
})
