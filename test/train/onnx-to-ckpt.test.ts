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

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const PYTHON = [process.env.STEPKV_PYTHON, 'python3', '/usr/bin/python3'].find(
  (p) => p && spawnSync(p, ['-c', 'import torch, onnx'], { stdio: 'ignore' }).status === 0,
)
if (!PYTHON) console.warn('\n*** test/train/onnx-to-ckpt.test.ts: NO python3 WITH torch + onnx: the checkpoint-rebuild test is SKIPPED ***\n')

const tmp = mkdtempSync(path.join(tmpdir(), 'stepkv-o2c-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const py = (args: string[]) => spawnSync(PYTHON!, args, { cwd: ROOT, encoding: 'utf8', timeout: 240_000 })

/** A fixture tensor (`{dtype, dims, b64}`, train/export.py) as numbers. */
function values(t: { dtype?: string; b64: string }): Float64Array {
  const bytes = Buffer.from(t.b64, 'base64')
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
  if ((t.dtype ?? 'float32') === 'float32') return Float64Array.from(new Float32Array(buf))
  if (t.dtype === 'int64') return Float64Array.from(new BigInt64Array(buf), Number)
  return Float64Array.from(new Uint8Array(buf))
}

function relErr(a: Float64Array, b: Float64Array): number {
  let scale = 1
  let worst = 0
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]))
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]))
  return worst / scale
}

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
    const pairs: [string, { b64: string }, { b64: string }][] = []
    for (const [name, t] of Object.entries(want.encoder.outputs)) pairs.push([`encoder ${name}`, got.encoder.outputs[name], t as { b64: string }])
    want.steps.forEach((s: { inputs: Record<string, { b64: string }>; outputs: Record<string, { b64: string }> }, i: number) => {
      for (const [name, t] of Object.entries(s.inputs)) expect(got.steps[i].inputs[name].b64, `step ${i} input ${name}`).toBe(t.b64)
      for (const [name, t] of Object.entries(s.outputs)) pairs.push([`step ${i} ${name}`, got.steps[i].outputs[name], t])
    })
    expect(pairs.length).toBeGreaterThan(20)
    for (const [name, a, b] of pairs) expect(relErr(values(a), values(b)), name).toBeLessThanOrEqual(1e-6)
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
