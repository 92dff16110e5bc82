/**
 * The captured step (`gpu-host --capture`: the fixed-capacity float-table graph replayed by WebGPU
 * graph capture, `gpu/static-step.ts`) against wasm, step by step, from the H200
 * (`node gpu/dist/bench.mjs captrace`, committed as `test/fixtures/gpu-capture-trace.json`): every step
 * within 1e-3 (max|a − b| / max(1, max|b|)) — the first step records the graph, the later ones are
 * replays, which is where a buffer copy the capture does not record would show (it did: replays
 * kept the first step's logits until the fixed graph stopped feeding a fused Gemm's Reshape into the
 * bound logits). Cases: a robot model with its encoder, the same model fed embeddings directly, a
 * text model, each captured host alone and stepping in turn with a dynamic-shape host.
 */
import { existsSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const FIXTURE = new URL('../fixtures/gpu-capture-trace.json', import.meta.url)
const fixture = existsSync(FIXTURE) ? JSON.parse(readFileSync(FIXTURE, 'utf8')) : undefined

describe('WebGPU graph-capture trace fixture', () => {
  it('has every captured step, replays included, within 1e-3 of wasm', () => {
    expect(fixture, 'test/fixtures/gpu-capture-trace.json (captrace on the GPU machine)').toBeDefined()
    const cases = fixture.cases as { model: string; mixed?: boolean; error?: string; rows: Record<string, number>[] }[]
    expect(cases.map((c) => c.model)).toEqual(expect.arrayContaining(['robot-carried', 'tiny-gqa', 'robot-carried (stub adapter, no encoder)']))
    for (const c of cases) {
      expect(c.error, c.model).toBeUndefined()
      expect(c.rows.length, c.model).toBeGreaterThanOrEqual(6) // 1 capture + ≥ 5 replays
      for (const r of c.rows) {
        expect(r.captured, `${c.model} step ${r.seq}`).toBeLessThanOrEqual(1e-3)
        if (c.mixed) expect(r.dynamic, `${c.model} dynamic step ${r.seq}`).toBeLessThanOrEqual(1e-3)
      }
    }
  })
})
