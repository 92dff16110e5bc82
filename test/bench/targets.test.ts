/**
 * The target ratios of issue 7 from synthetic records, worked by hand.
 */
import { describe, expect, it } from 'vitest'
import { codecTargets, historyTargets, workerdVsNode, type HistoryRecord, type Runtime } from '../../bench/targets.ts'

const rec = (config: string, policy: string, T: number, p50: number, bytes = 0, runtime: Runtime = 'node'): HistoryRecord => ({
  config,
  family: config,
  policy,
  T,
  runtime,
  stepMs: { p50, p95: p50, n: 5 },
  bytes,
})

const records = [
  rec('reencode', 'reencode', 32, 2000),
  rec('full', 'full', 32, 80, 6_400_000),
  rec('guikv-25', 'guikv', 1, 20),
  rec('guikv-25', 'guikv', 32, 25),
  rec('guikv-25', 'guikv', 64, 26),
  rec('guikv-25-kivi4', 'guikv', 1, 20),
  rec('guikv-25-kivi4', 'guikv', 32, 400, 200_000),
  rec('guikv-25-kivi4', 'guikv', 64, 23),
  rec('tempofit', 'tempofit', 1, 10),
  rec('guikv-25', 'guikv', 1, 24.2, 0, 'workerd'),
  rec('full', 'full', 32, 80, 0, 'workerd'),
]

describe('historyTargets', () => {
  const byId = Object.fromEntries(historyTargets(records).map((t) => [t.id, t]))

  it('flat cost: p50(T = 64) / p50(T = 1) ≤ 1.2 per TempoFit and GUI-KV configuration', () => {
    expect(byId['flat-guikv-25']).toMatchObject({ ratio: 1.3, met: false }) // 26 / 20
    expect(byId['flat-guikv-25-kivi4']).toMatchObject({ ratio: 1.15, met: true }) // 23 / 20
    expect(byId['flat-tempofit']).toMatchObject({ ratio: null, met: false }) // T = 64 not measured
  })

  it('speed-up over re-encoding at T = 32 ≥ 10', () => {
    expect(byId['vs-reencode-guikv-25']).toMatchObject({ ratio: 80, met: true }) // 2000 / 25
    expect(byId['vs-reencode-guikv-25-kivi4']).toMatchObject({ ratio: 5, met: false }) // 2000 / 400
  })

  it('memory: GUI-KV 25 % + KIVI 4-bit over the float32 full cache at T = 32 ≤ 1/8', () => {
    expect(byId['memory-guikv25-kivi4']).toMatchObject({ ratio: 0.031, met: true }) // 200k / 6.4M = 0.03125
  })
})

describe('workerdVsNode', () => {
  it('is the geometric mean of per-point p50 ratios', () => {
    // guikv-25 T=1: 24.2 / 20 = 1.21; full T=32: 80 / 80 = 1 → √1.21 = 1.1
    const t = workerdVsNode(records)
    expect(t.ratio).toBe(1.1)
    expect(t.met).toBe(true)
    expect(t.detail).toBe('2 points; worst 1.21 (guikv-25 T=1); 0 above 1.3')
  })

  it('is unmeasured without workerd records', () => {
    expect(workerdVsNode(records.filter((r) => r.runtime === 'node'))).toMatchObject({ ratio: null, met: false })
  })
})

describe('codecTargets', () => {
  it('compares float32 encode and decode with allocate-and-copy', () => {
    const rows = [
      { op: 'copy', storage: 'float32', mbPerS: 4000 },
      { op: 'decode', storage: 'float32', mbPerS: 2400 },
      { op: 'encode', storage: 'float32', mbPerS: 800 },
      { op: 'encode', storage: 'kivi4', mbPerS: 4000 },
    ]
    const [decode, encode] = codecTargets(rows, 'node')
    expect(decode).toMatchObject({ id: 'codec-decode-node', ratio: 0.6, met: true })
    expect(encode).toMatchObject({ id: 'codec-encode-node', ratio: 0.2, met: false })
  })
})
