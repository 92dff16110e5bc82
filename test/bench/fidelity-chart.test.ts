/**
 * The trained-model fidelity chart's data (bench/fidelity-chart.ts): one point per configuration
 * that stores bytes (percentages and KiB from the row), its 95 % interval as a rule, the
 * memoryless row as the dashed floor, reruns of one label drawn once; the SVG renders.
 */
import { mkdtempSync, readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { fidelityChartSpec, writeFidelityChart, type FidelityChartRow } from '../../bench/fidelity-chart.ts'

const row = (label: string, policy: string, bits: number, bytes: number, agree: number, ci: [number, number]): FidelityChartRow => ({ label, policy, bits, agreementMemory: agree, agreementMemoryCI: ci, memorySteps: 374, bytesPerStep: bytes })
const rows = [
  row('full (m)', 'full', 32, 1024 * 1000, 1, [0.99, 1]),
  row('memoryless (m)', 'none', 32, 0, 0.163, [0.13, 0.2]),
  row('guikv 66 kivi4 (m)', 'guikv', 4, 2048, 0.904, [0.87, 0.93]),
  row('guikv 66 kivi4 (m)', 'guikv', 4, 4096, 0.5, [0.4, 0.6]), // a rerun of the same label: dropped
]

describe('fidelity chart', () => {
  it('places each configuration that stores bytes once, with its interval, over the memoryless floor', () => {
    const spec = fidelityChartSpec('Robot suite', rows) as unknown as { title: { text: string; subtitle: string }; layer: { data: { values: Record<string, unknown>[] } }[] }
    const points = spec.layer[1].data.values
    expect(points).toEqual([
      { label: 'full (m)', policy: 'full', storage: 'float32', kib: 1000, pct: 100, lo: 99, hi: 100 },
      { label: 'guikv 66 kivi4 (m)', policy: 'guikv', storage: 'KIVI 4-bit', kib: 2, pct: 90.4, lo: 87, hi: 93 },
    ])
    expect(spec.layer[0].data.values).toBe(points) // the interval rules
    expect(spec.layer[2].data.values).toEqual([{ pct: 16.3 }])
    expect(spec.title.text).toBe('Robot suite')
    expect(spec.title.subtitle).toContain('374 memory-dependent steps')
    expect(spec.title.subtitle).toContain('memoryless (16.3 %)')
    expect(() => fidelityChartSpec('x', [rows[1]])).toThrow(RangeError)
  })

  it('renders an SVG', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'stepkv-chart-')), 'c.svg')
    await writeFidelityChart('GUI suite', rows, file)
    const svg = readFileSync(file, 'utf8')
    expect(svg.startsWith('<svg')).toBe(true)
    expect(svg).toContain('GUI suite')
    expect(svg).toContain('KIVI 4-bit')
  })
})
