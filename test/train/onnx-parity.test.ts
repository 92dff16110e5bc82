/**
 * @module The trained policies (models/<id>/encoder.onnx + model.onnx, written by train/export.py)
 * run in ORT-web (wasm, Node) and agree with torch's outputs stored in test/fixtures/<id>.json:
 * the encoder on one observation, the decoder on a 2-step sequence (carried: past KV with masked
 * keys; tempo: an empty bank, then a bank with empty slots). Agreement: max|a − b| / max(1, max|b|)
 * ≤ 1e-4 for every output. STEPKV_MODELS_DIR / STEPKV_FIXTURES_DIR point the test elsewhere
 * (train/smoke.sh uses them for its throw-away models).
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ortForNode, type Ort } from '../../gpu/ort-node.ts'
import { relErr } from '../models/harness.ts'
import { fixtureArray, fixtureF32, type FixtureTensor } from './fixture-tensor.ts'

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const MODELS = process.env.STEPKV_MODELS_DIR ?? path.join(ROOT, 'models')
const FIXTURES = process.env.STEPKV_FIXTURES_DIR ?? path.join(ROOT, 'test/fixtures')
const IDS = ['gui-carried', 'gui-tempo', 'robot-carried', 'robot-tempo']
const TOL = 1e-4

type Feeds = Record<string, FixtureTensor>
interface Fixture {
  id: string
  tolerance: number
  encoder: { inputs: Feeds; outputs: Feeds }
  steps: { inputs: Feeds; outputs: Feeds }[]
}
interface Port {
  name: string
  dtype: string
  dims: (number | string)[]
}

function tensorOf(ort: Ort, t: FixtureTensor) {
  return new ort.Tensor(t.dtype ?? 'float32', fixtureArray(t) as never, t.dims)
}

function feedsOf(ort: Ort, feeds: Feeds) {
  return Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, tensorOf(ort, t)]))
}

/** Runs `session` on `feeds` and checks every expected output; returns the worst error per output. */
async function agree(ort: Ort, session: Awaited<ReturnType<Ort['InferenceSession']['create']>>, io: { inputs: Feeds; outputs: Feeds }) {
  const out = await session.run(feedsOf(ort, io.inputs))
  const errors: Record<string, number> = {}
  for (const [name, want] of Object.entries(io.outputs)) {
    expect(out[name], `output ${name}`).toBeDefined()
    expect([...out[name].dims]).toEqual(want.dims)
    errors[name] = relErr(out[name].data as Float32Array, fixtureF32(want))
  }
  return errors
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex')

for (const id of IDS) {
  const dir = path.join(MODELS, id)
  const fixtureFile = path.join(FIXTURES, `${id}.json`)
  const present = existsSync(path.join(dir, 'manifest.json')) && existsSync(fixtureFile)
  describe.skipIf(!present)(`trained policy ${id} (ORT-web vs torch)`, () => {
    it('manifest matches the files and the graphs', async () => {
      const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'))
      expect(m.id).toBe(id)
      expect(sha256(path.join(dir, m.file))).toBe(m.sha256)
      expect(sha256(path.join(dir, m.encoder.file))).toBe(m.encoder.sha256)
      const ort = ortForNode()
      const decoder = await ort.InferenceSession.create(readFileSync(path.join(dir, m.file)))
      const encoder = await ort.InferenceSession.create(readFileSync(path.join(dir, m.encoder.file)))
      expect([...decoder.inputNames].sort()).toEqual(m.inputs.map((p: Port) => p.name).sort())
      expect([...decoder.outputNames].sort()).toEqual(m.outputs.map((p: Port) => p.name).sort())
      expect([...encoder.inputNames].sort()).toEqual(m.encoder.inputs.map((p: Port) => p.name).sort())
      expect(m.ports.tempo).toBe(m.tempoLayers.length > 0)
      const width = m.actionHead.segments.reduce((a: number, s: { size: number }) => a + s.size, 0)
      expect(width).toBe(m.actionHead.size)
      expect(m.outputs.find((p: Port) => p.name === 'logits').dims[2]).toBe(width)
    })

    it('encoder and decoder agree with torch within 1e-4', async () => {
      const fixture: Fixture = JSON.parse(readFileSync(fixtureFile, 'utf8'))
      const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'))
      const ort = ortForNode()
      const encoder = await ort.InferenceSession.create(readFileSync(path.join(dir, m.encoder.file)))
      const decoder = await ort.InferenceSession.create(readFileSync(path.join(dir, m.file)))
      const worst: Record<string, number> = await agree(ort, encoder, fixture.encoder)
      expect(fixture.steps.length).toBeGreaterThanOrEqual(2)
      for (const [k, step] of fixture.steps.entries()) {
        for (const [name, e] of Object.entries(await agree(ort, decoder, step))) worst[`step${k}.${name}`] = e
      }
      const bad = Object.entries(worst).filter(([, e]) => !(e <= TOL))
      expect(bad, `outputs over ${TOL}: ${JSON.stringify(bad)}`).toEqual([])
    })
  })
  if (!present)
    it.skip(`${id}: no models/${id}/manifest.json or test/fixtures/${id}.json (run train/run_all.sh on the GPU machine)`, () => {})
}
