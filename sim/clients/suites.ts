/**
 * @module The demo's configurations and their runner. Every configuration of a suite plays the
 * same episodes (each task × the same seeds), one at a time, so rows differ only by model and
 * memory. Budgets are derived from the served model's manifest: tokens per frame = visual tokens
 * of every camera + proprio tokens + the mean instruction length in bytes (one token per byte).
 */
import { GuiEnv, TASKS as GUI_TASKS } from '../gui/index.ts'
import { TASKS as ROBOT_TASKS } from '../robot/index.ts'
import { runGuiEpisode, type EpisodeResult } from './gui.ts'
import { runRobotEpisode, type RobotEpisodeResult } from './robot.ts'
import type { Client, Clock, PolicySpec } from './session.ts'
import { mean, percentile, wilson } from './stats.ts'

export type Suite = 'gui' | 'robot'

/** One row of the demo: a model with a memory policy, or the memoryless baseline. */
export interface RunConfig {
  suite: Suite
  /** `memoryless` for the baseline, else the policy name. */
  policy: string
  /** Short row label, e.g. `guikv 210`. */
  label: string
  model: string
  spec: PolicySpec
  memoryless: boolean
}

/** The part of a served manifest (`GET /v1/models`) the budgets need. */
export interface PrefixManifest {
  id: string
  prefixLayout: { kind: string; tokens: number | string; maxTokens?: number }[]
}

/** Prefix tokens of one step: visual + proprio tokens + `instructionBytes` (capped by the layout). */
export function tokensPerFrame(m: PrefixManifest, instructionBytes: number): number {
  let n = 0
  for (const p of m.prefixLayout) {
    if (typeof p.tokens === 'number') n += p.tokens
    else if (p.kind === 'text') n += Math.min(instructionBytes, p.maxTokens ?? Infinity)
  }
  return n
}

const utf8Bytes = (s: string) => new TextEncoder().encode(s).length

/** Mean instruction length (bytes) over the suite's episodes (GUI instructions vary by seed). */
export function meanInstructionBytes(suite: Suite, seeds: readonly number[]): number {
  if (suite === 'robot') return mean(ROBOT_TASKS.map((t) => utf8Bytes(t.instruction)))
  const env = new GuiEnv()
  return mean(
    GUI_TASKS.flatMap((t) => seeds.map((s) => utf8Bytes(env.reset(t.name, s).instruction))),
  )
}

/**
 * GUI rows: gui-carried + full, gui-carried + guikv at ≈ 25 % of an 8-frame prompt, gui-tempo +
 * tempofit (8 frames), memoryless gui-carried.
 * @param frameTokens tokens of a typical step (`tokensPerFrame`)
 */
export function guiConfigs(frameTokens: number): RunConfig[] {
  const budget = Math.round(0.25 * 8 * frameTokens)
  return [
    row('gui', 'gui-carried', { name: 'full' }, 'full'),
    row(
      'gui',
      'gui-carried',
      { name: 'guikv', params: { budgetTokens: budget } },
      `guikv ${budget}`,
    ),
    row('gui', 'gui-tempo', { name: 'tempofit', params: { frames: 8 } }, 'tempofit 8'),
    {
      ...row('gui', 'gui-carried', { name: 'full' }, 'memoryless'),
      policy: 'memoryless',
      memoryless: true,
    },
  ]
}

/**
 * Robot rows: robot-carried + full, robot-carried + window of the last 2 frames' tokens (no
 * sinks: they would keep the first frame's first patches; the memory tasks hide their cue 8
 * ticks before the end, so this window should fail them), robot-tempo + tempofit (8 frames),
 * memoryless robot-carried.
 */
export function robotConfigs(frameTokens: number): RunConfig[] {
  const recent = 2 * frameTokens
  const window = { name: 'window', params: { sinkTokens: 0, recentTokens: recent } }
  return [
    row('robot', 'robot-carried', { name: 'full' }, 'full'),
    row('robot', 'robot-carried', window, `window ${recent}`),
    row('robot', 'robot-tempo', { name: 'tempofit', params: { frames: 8 } }, 'tempofit 8'),
    {
      ...row('robot', 'robot-carried', { name: 'full' }, 'memoryless'),
      policy: 'memoryless',
      memoryless: true,
    },
  ]
}

function row(suite: Suite, model: string, spec: PolicySpec, label: string): RunConfig {
  return { suite, policy: spec.name, label, model, spec, memoryless: false }
}

/** A configuration's measurements (`success`, `memorySuccess` are fractions in [0, 1]). */
export interface RunSummary {
  suite: Suite
  policy: string
  label: string
  model: string
  params: Record<string, number | string | boolean>
  episodes: number
  success: number
  /** Wilson 95 % interval of `success`. */
  successCi: [number, number]
  /** Episodes of memory tasks, and the success rate over them (null when none ran). */
  memoryEpisodes: number
  memorySuccess: number | null
  memorySuccessCi: [number, number]
  /** Step calls made, and their client-side latency percentiles (ms). */
  steps: number
  stepMs: { p50: number; p95: number }
  /** Mean over episodes of the session's serialized memory after its last step (bytes). */
  memoryBytes: number
  /** Success rate per task. */
  tasks: Record<string, number>
  /** Robot only: simulated ticks, replies after their deadline, ticks without a fresh action. */
  ticks?: number
  deadlineMisses?: number
  heldTicks?: number
  /** Wall time of the configuration (s). */
  wallS: number
}

export interface RunOptions {
  /** Episodes per task. */
  seeds: readonly number[]
  /** Robot control rate (Hz). */
  rateHz: number
  /** Robot deadline handling and pacing. */
  realtime: boolean
  clock?: Clock
  /** Called after each episode with the results so far. */
  onEpisode?: (done: readonly EpisodeResult[], total: number) => void
}

/** Plays every task × seed of the configuration's suite and summarizes. */
export async function runConfig(client: Client, c: RunConfig, o: RunOptions): Promise<RunSummary> {
  const tasks = (c.suite === 'gui' ? GUI_TASKS : ROBOT_TASKS).map((t) => t.name)
  const total = tasks.length * o.seeds.length
  const results: EpisodeResult[] = []
  const t0 = performance.now()
  for (const task of tasks)
    for (const seed of o.seeds) {
      const base = {
        model: c.model,
        policy: c.spec,
        task,
        seed,
        memoryless: c.memoryless,
        clock: o.clock,
      }
      results.push(
        c.suite === 'gui'
          ? await runGuiEpisode(client, base)
          : await runRobotEpisode(client, { ...base, rateHz: o.rateHz, realtime: o.realtime }),
      )
      o.onEpisode?.(results, total)
    }
  return summarize(c, results, tasks, (performance.now() - t0) / 1000)
}

/** The summary of a configuration's episodes. */
export function summarize(
  c: RunConfig,
  results: readonly EpisodeResult[],
  tasks: readonly string[],
  wallS: number,
): RunSummary {
  const ok = results.filter((r) => r.success).length
  const mem = results.filter((r) => r.memoryTask)
  const memOk = mem.filter((r) => r.success).length
  const latencies = results.flatMap((r) => r.stepMs)
  const robot = results as readonly Partial<RobotEpisodeResult>[]
  const sum = (k: 'ticks' | 'deadlineMisses' | 'heldTicks') =>
    robot.reduce((a, r) => a + (r[k] ?? 0), 0)
  return {
    suite: c.suite,
    policy: c.policy,
    label: c.label,
    model: c.model,
    params: c.spec.params ?? {},
    episodes: results.length,
    success: results.length ? ok / results.length : 0,
    successCi: wilson(ok, results.length),
    memoryEpisodes: mem.length,
    memorySuccess: mem.length ? memOk / mem.length : null,
    memorySuccessCi: wilson(memOk, mem.length),
    steps: latencies.length,
    stepMs: { p50: percentile(latencies, 0.5), p95: percentile(latencies, 0.95) },
    memoryBytes: Math.round(mean(results.map((r) => r.memoryBytes))),
    tasks: Object.fromEntries(
      tasks.map((t) => {
        const of = results.filter((r) => r.task === t)
        return [t, of.length ? of.filter((r) => r.success).length / of.length : 0]
      }),
    ),
    ...(c.suite === 'robot'
      ? { ticks: sum('ticks'), deadlineMisses: sum('deadlineMisses'), heldTicks: sum('heldTicks') }
      : {}),
    wallS,
  }
}
