/**
 * @module Bring your own model (train/byom.py): runs the CPU unittest suite (test/train/test_byom.py:
 * logits parity with the user's module, split prefill, ports, misfits, export), then loads the
 * model.onnx it exported in ORT-web (wasm, Node) and checks the manifest's ports are the graph's
 * and the outputs agree with torch's (max|a − b| / max(1, max|b|) ≤ 1e-4), then serves it through
 * the Worker's step engine (`runStep`) under full, SnapKV, H2O and TempoFit. Needs a python3 with
 * torch (≥ 1.13): CI has none, so there it SKIPS (loudly); `STEPKV_PYTHON` picks the interpreter.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { findPython } from '../python.ts'
import type { ModelManifest } from '../../gpu/manifest.ts'
import { ortForNode } from '../../gpu/ort-node.ts'
import { ModelRuntime } from '../../gpu/session.ts'
import { initialMemory, policyFor, runStep } from '../../worker/engine.ts'

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const PYTHON = findPython('torch')
if (!PYTHON) console.warn('\n*** test/train/byom.test.ts: NO python3 WITH torch: the bring-your-own-model exporter test is SKIPPED ***\n')

const out = mkdtempSync(path.join(tmpdir(), 'stepkv-byom-'))
afterAll(() => rmSync(out, { recursive: true, force: true }))

describe.skipIf(!PYTHON)('train/byom.py', () => {
  it('the unittest suite passes and the exported graph runs in ORT with torch’s outputs', async () => {
    const py = spawnSync(PYTHON!, [path.join(ROOT, 'test/train/test_byom.py')], { env: { ...process.env, BYOM_OUT: out }, encoding: 'utf8', timeout: 240_000 })
    expect(py.status, py.stderr.slice(-3000)).toBe(0)
    const m = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'))
    const fixture = JSON.parse(readFileSync(path.join(out, 'fixture.json'), 'utf8'))
    const ort = ortForNode()
    const session = await ort.InferenceSession.create(readFileSync(path.join(out, m.file)))
    expect([...session.inputNames].sort()).toEqual(m.inputs.map((p: { name: string }) => p.name).sort())
    expect([...session.outputNames].sort()).toEqual(m.outputs.map((p: { name: string }) => p.name).sort())
    const S = fixture.inputIds.length
    const empty = (n: number) => new ort.Tensor('float32', new Float32Array(0), [1, m.kvHeads, n === 0 ? 0 : n, m.headDim])
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(fixture.inputIds, BigInt), [1, S]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(i)), [1, S]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(S).fill(1n), [1, S]),
      obs_window: new ort.Tensor('int64', BigInt64Array.from([BigInt(fixture.obsWindow)]), []),
    }
    for (let l = 0; l < m.layers; l++) for (const part of ['key', 'value']) feeds[`past_key_values.${l}.${part}`] = empty(0)
    for (const l of m.tempoLayers) for (const part of ['key', 'value']) feeds[`tempo.${l}.${part}`] = empty(0)
    if (m.tempoLayers.length) feeds.tempo_bias = new ort.Tensor('float32', new Float32Array(0), [1, m.kvHeads, 1, 0])
    const got = await session.run(feeds)
    for (const [name, want] of Object.entries(fixture.outputs as Record<string, { dims: number[]; data: number[] }>)) {
      expect([...got[name].dims], name).toEqual(want.dims)
      const a = got[name].data as Float32Array
      const scale = Math.max(1, ...want.data.map(Math.abs))
      const worst = want.data.reduce((w, b, i) => Math.max(w, Math.abs(a[i] - b)), 0) / scale
      expect(worst, name).toBeLessThanOrEqual(1e-4)
    }
    // The step engine serves it: the first step's logits are torch's; bounded policies stay at budget.
    const manifest = m as ModelManifest
    const runtime = ModelRuntime.for(ort, { manifest, bytes: () => new Uint8Array(readFileSync(path.join(out, m.file))) })
    const limits = { maxPrefixTokens: 4096 }
    const text = String.fromCharCode(...fixture.inputIds)
    const first = await runStep(runtime, initialMemory(manifest, policyFor(manifest, 'full', {})), policyFor(manifest, 'full', {}), { seq: 1, observation: { text }, options: { returnLogits: true } }, limits)
    const want = fixture.outputs.logits.data as number[]
    expect(Math.max(...want.map((b, i) => Math.abs(first.logits!.data[i] - b)))).toBeLessThanOrEqual(1e-4 * Math.max(1, ...want.map(Math.abs)))
    for (const [name, params, tokens] of [['snapkv', { budgetTokens: 16, observationWindow: 4 }, 16], ['h2o', { budgetTokens: 16 }, 16], ['tempofit', { frames: 2 }, 0]] as const) {
      const policy = policyFor(manifest, name, params)
      let mem = initialMemory(manifest, policy)
      for (let seq = 1; seq <= 4; seq++) mem = (await runStep(runtime, mem, policy, { seq, observation: { text: `step ${seq}: open the menu` } }, limits)).memory
      if (name === 'tempofit') expect(mem.layerIds, name).toEqual([1])
      else expect(mem.tokens, name).toBe(tokens)
    }
  })
})
