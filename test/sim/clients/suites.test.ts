/** The demo's statistics, budgets derived from manifests, and summaries. */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { formatTable, toJson } from '../../../sim/clients/report.ts'
import { percentile, wilson } from '../../../sim/clients/stats.ts'
import {
  guiConfigs,
  meanInstructionBytes,
  robotConfigs,
  summarize,
  tokensPerFrame,
  type PrefixManifest,
} from '../../../sim/clients/suites.ts'

const manifest = (id: string): PrefixManifest =>
  JSON.parse(readFileSync(`models/${id}/manifest.json`, 'utf8'))

describe('stats', () => {
  it('percentile interpolates linearly; wilson matches the textbook value', () => {
    expect(percentile([4, 1, 3, 2], 0.5)).toBe(2.5)
    expect(percentile([1, 2, 3, 4, 5], 0.95)).toBeCloseTo(4.8)
    expect(percentile([], 0.5)).toBeNaN()
    const [lo, hi] = wilson(5, 10)
    expect(lo).toBeCloseTo(0.2366, 3)
    expect(hi).toBeCloseTo(0.7634, 3)
    expect(wilson(0, 0)).toEqual([0, 1])
  })
})

describe('budgets', () => {
  it('counts visual, proprio and instruction tokens from the manifest', () => {
    expect(tokensPerFrame(manifest('gui-carried'), 30)).toBe(48 + 30)
    expect(tokensPerFrame(manifest('robot-carried'), 50)).toBe(16 + 16 + 1 + 50)
    expect(tokensPerFrame(manifest('robot-carried'), 500)).toBe(33 + 96) // instruction capped
  })

  it('guikv keeps ≈ 25 % of 8 frames; the robot window keeps 2 frames and no sinks', () => {
    const gui = guiConfigs(100)
    expect(gui.map((c) => c.label)).toEqual(['full', 'guikv 200', 'tempofit 8', 'memoryless'])
    expect(gui[3]).toMatchObject({ policy: 'memoryless', memoryless: true, model: 'gui-carried' })
    const robot = robotConfigs(80)
    expect(robot[1].spec).toEqual({ name: 'window', params: { sinkTokens: 0, recentTokens: 160 } })
    expect(robot[2]).toMatchObject({
      model: 'robot-tempo',
      spec: { name: 'tempofit', params: { frames: 8 } },
    })
    expect(meanInstructionBytes('robot', [1])).toBeGreaterThan(30)
    expect(meanInstructionBytes('gui', [1000, 1001])).toBeGreaterThan(20)
  })
})

describe('summaries', () => {
  it('success over all episodes and over memory tasks, latency percentiles, mean memory', () => {
    const ep = (
      task: string,
      success: boolean,
      memoryTask: boolean,
      stepMs: number[],
      memoryBytes: number,
    ) => ({
      task,
      seed: 1,
      success,
      memoryTask,
      steps: stepMs.length,
      stepMs,
      memoryBytes,
      ticks: stepMs.length,
      deadlineMisses: stepMs.filter((ms) => ms > 100).length,
      heldTicks: 0,
    })
    const results = [
      ep('a', true, true, [10, 20], 100),
      ep('a', false, true, [30], 300),
      ep('b', true, false, [40, 150], 200),
    ]
    const s = summarize(robotConfigs(80)[0], results, ['a', 'b'], 1)
    expect(s).toMatchObject({
      episodes: 3,
      memoryEpisodes: 2,
      memorySuccess: 0.5,
      steps: 5,
      memoryBytes: 200,
      deadlineMisses: 1,
    })
    expect(s.success).toBeCloseTo(2 / 3)
    expect(s.stepMs.p50).toBe(30)
    expect(s.tasks).toEqual({ a: 0.5, b: 1 })
    const json = toJson([s], {
      episodesPerTask: 1,
      seeds: [1],
      rateHz: 10,
      realtime: true,
      server: 'x',
      date: 'd',
      wallS: 1,
    }) as {
      runs: Record<string, unknown>[]
    }
    expect(Object.keys(json.runs[0])).toEqual(
      expect.arrayContaining([
        'suite',
        'policy',
        'episodes',
        'success',
        'memorySuccess',
        'stepMs',
        'memoryBytes',
      ]),
    )
    expect(formatTable([s])).toMatch(
      /robot\s+full\s+robot-carried\s+3\s+67 % \(21–94\)\s+50 % of 2/,
    )
  })
})
