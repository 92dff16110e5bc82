/**
 * The WebGPU-vs-wasm parity fixture written on the GPU machine by `bench/gpu/run.sh`
 * (`$OUT/fixtures/gpu-parity.json`, committed as `test/fixtures/gpu-parity.json`): every case passed
 * and every step is within 1e-3 (max|a − b| / max(1, max|b|)), including the first step (empty past)
 * and steps after pruning (fixture from the H200 run of 2026-11-30 on the retrained models; re-run bench/gpu/run.sh to refresh it).
 */
import { existsSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const FIXTURE = new URL('../fixtures/gpu-parity.json', import.meta.url)
const fixture = existsSync(FIXTURE) ? JSON.parse(readFileSync(FIXTURE, 'utf8')) : undefined

describe('WebGPU vs wasm parity fixture', () => {
  it('has WebGPU within 1e-3 of wasm on every step, first step and pruned steps included', () => {
    expect(fixture, 'test/fixtures/gpu-parity.json (from bench/gpu/run.sh on the GPU machine)').toBeDefined()
    expect(fixture.backend).toBe('webgpu')
    expect(fixture.cases.length).toBeGreaterThan(0)
    for (const c of fixture.cases) {
      expect(c.error, `${c.model} ${c.policy.name}`).toBeUndefined()
      for (const s of c.steps) expect(s.relErr, `${c.model} ${c.policy.name} step ${s.seq}`).toBeLessThanOrEqual(1e-3)
    }
    // The window cases pruned (memory stayed at its budget while steps kept coming).
    const pruned = fixture.cases.filter((c: { policy: { name: string } }) => c.policy.name !== 'full')
    expect(pruned.some((c: { steps: { memoryTokens: number }[] }) => c.steps.at(-1)!.memoryTokens === c.steps.at(-2)!.memoryTokens)).toBe(true)
    expect(fixture.pass).toBe(true)
  })
})
