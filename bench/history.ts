/**
 * @module `npm run bench -- history`: step latency and carried memory vs history length T on the
 * trained GUI models over real simulator frames. For each configuration the in-process step is
 * measured in Node and then, right after (so both see the same machine load), by the same code
 * inside workerd (the bench worker under `wrangler dev`); then the carried configurations run end
 * to end over HTTP against `wrangler dev` of the stepkv Worker. Re-encoding runs last (at T = 64
 * it may exhaust the 4 GiB wasm heap; the failure is recorded).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pack, unpack } from 'msgpackr'
import { startDev, type DevServer } from './dev-server.ts'
import { guiFrameTokens, guiSessionFrames, type GuiObservation } from './frames.ts'
import { historyConfigs, measureHistory, type HistoryConfig, type MeasuredPoint, type RepPlan } from './history-core.ts'
import { httpHistory } from './http-history.ts'
import { nodeDeps } from './node-deps.ts'
import { latencySummary } from './stats.ts'
import { historyTargets, type HistoryRecord, type Runtime } from './targets.ts'

/** History lengths of the sweep (frames). */
export const HISTORY_TS = [1, 2, 4, 8, 16, 32, 64]

/** Options of a run. */
export interface HistoryOptions {
  /** Fewer repetitions, and HTTP only for four configurations at T ∈ {1, 8, 32, 64}. */
  quick: boolean
  workerd: boolean
  http: boolean
  log: (line: string) => void
}

/** A full record: the target fields plus what the step did. */
export type FullRecord = HistoryRecord & {
  model: string
  params: Record<string, number>
  budgetTokens?: number
  storage: 'float32' | 'kivi4'
  /** The step layout (`StepLayout`). */
  layout: 'dynamic' | 'fixed'
  memoryTokens: number
  prefillTokens?: number
  parts?: Record<string, number>
  action?: unknown
  repeatedBy?: string
}

/** A point that could not be measured. */
export interface Failure {
  config: string
  runtime: Runtime
  T: number
  error: string
}

function plans(quick: boolean) {
  const carried: RepPlan = quick ? { reps: 4, warmup: 1, minReps: 3, maxPointMs: 1500 } : { reps: 12, warmup: 1, minReps: 5, maxPointMs: 3000 }
  const reencode: RepPlan = quick ? { reps: 2, warmup: 1, minReps: 2, maxPointMs: 1000 } : { reps: 5, warmup: 1, minReps: 3, maxPointMs: 5000 }
  const http: RepPlan = quick ? { reps: 3, warmup: 1, minReps: 3, maxPointMs: 0 } : { reps: 6, warmup: 1, minReps: 6, maxPointMs: 0 }
  return { carried, reencode, http }
}

const errorText = (e: unknown) => {
  const cause = e instanceof Error && e.cause ? ` (${String((e.cause as Error).message ?? e.cause)})` : ''
  return ((e instanceof Error ? e.message : String(e)).split('\n')[0] + cause).slice(0, 300)
}

/** The last lines of a dev server's output that say something (wrangler's cf/DNS noise dropped). */
const devTail = (dev: DevServer | undefined) =>
  dev ? dev.log(4000).split('\n').filter((l) => l.trim() && !/Request\.cf|ENOTFOUND|GetAddrInfo|callbackTrampoline/.test(l)).slice(-4).join(' | ').slice(0, 500) : ''

function record(c: HistoryConfig, runtime: Runtime, p: MeasuredPoint): FullRecord {
  return {
    config: c.id,
    family: c.family,
    policy: c.reencode ? 'reencode' : c.policy,
    model: c.model,
    params: c.params,
    ...(c.budgetTokens && { budgetTokens: c.budgetTokens }),
    storage: c.bits === 32 ? 'float32' : 'kivi4',
    layout: c.layout ?? 'dynamic',
    T: p.T,
    runtime,
    stepMs: latencySummary(p.samplesMs),
    bytes: p.bytes,
    memoryTokens: p.memoryTokens,
    prefillTokens: p.prefillTokens,
    parts: Object.fromEntries(Object.entries(p.parts).map(([k, v]) => [k, Math.round(v * 100) / 100])),
    action: p.action,
  }
}

/**
 * The bench worker's `/history` (the same `measureHistory`, inside workerd). Before the request the
 * event loop turns once, and a connection error is retried once: a long in-process Node
 * measurement keeps the loop busy, so a keep-alive socket that wrangler closed meanwhile is only
 * noticed when the next request is written on it ("fetch failed").
 */
async function workerdHistory(dev: DevServer, config: HistoryConfig, frames: readonly GuiObservation[], Ts: number[], plan: RepPlan): Promise<MeasuredPoint[]> {
  const body = pack({ config, frames: frames.slice(0, Math.max(...Ts)), Ts, plan }) as Uint8Array<ArrayBuffer>
  let res: Response
  await new Promise((r) => setTimeout(r, 20))
  try {
    res = await fetch(`${dev.url}/history`, { method: 'POST', body })
  } catch {
    await new Promise((r) => setTimeout(r, 200))
    res = await fetch(`${dev.url}/history`, { method: 'POST', body })
  }
  const reply = unpack(new Uint8Array(await res.arrayBuffer()))
  if (res.status !== 200) throw new Error(reply?.error ?? `HTTP ${res.status}`)
  return reply.points
}

/**
 * Runs the sweep.
 * @returns records (one per configuration × T × runtime), failures, the checks and the targets
 * @throws Error if wrangler dev cannot start (other failures are recorded per point)
 */
export async function runHistory(o: HistoryOptions) {
  const frames = guiSessionFrames(Math.max(...HISTORY_TS))
  const visualTokens = 48
  const prompt8Tokens = frames.slice(0, 8).reduce((n, f) => n + guiFrameTokens(f, visualTokens), 0)
  const configs = historyConfigs(prompt8Tokens)
  const carried = configs.filter((c) => !c.reencode)
  const reencode = configs.find((c) => c.reencode)!
  const plan = plans(o.quick)
  const deps = nodeDeps()
  const records: FullRecord[] = []
  const failures: Failure[] = []
  const once: RepPlan = { reps: 1, warmup: 0, minReps: 1, maxPointMs: 0 }

  const worker = o.workerd ? await startDev('bench/workerd/wrangler.toml') : undefined
  try {
    // Warm-up: ORT sessions, wasm and the JIT on every code path (eviction, KIVI), in both runtimes.
    o.log(`warm-up (${carried.length} configurations × 4 steps, re-encoding of 2 frames) …`)
    for (const c of carried) {
      await measureHistory(deps, c, frames, [4], once)
      if (worker) await workerdHistory(worker, c, frames, [4], once)
    }
    await measureHistory(deps, reencode, frames, [2], once)
    if (worker) await workerdHistory(worker, reencode, frames, [2], once)

    const measure = async (c: HistoryConfig, Ts: number[], p: RepPlan) => {
      for (const [runtime, run] of [
        ['node', () => measureHistory(deps, c, frames, Ts, p)],
        ...(worker ? [['workerd', () => workerdHistory(worker, c, frames, Ts, p)]] : []),
      ] as [Runtime, () => Promise<MeasuredPoint[]>][]) {
        const t0 = performance.now()
        try {
          const points = await run()
          records.push(...points.map((pt) => record(c, runtime, pt)))
          o.log(`${c.id.padEnd(16)} ${runtime.padEnd(7)} ${points.map((pt) => `T${pt.T} ${latencySummary(pt.samplesMs).p50}`).join('  ')} ms  (${((performance.now() - t0) / 1000).toFixed(1)} s)`)
        } catch (e) {
          const error = runtime === 'workerd' ? `${errorText(e)} [wrangler: ${devTail(worker)}]` : errorText(e)
          for (const T of Ts) failures.push({ config: c.id, runtime, T, error })
          o.log(`${c.id.padEnd(16)} ${runtime.padEnd(7)} failed at T ∈ {${Ts.join(', ')}}: ${errorText(e)}`)
        }
      }
    }
    for (const c of carried) await measure(c, HISTORY_TS, plan.carried)
    // Re-encoding, one T at a time (a failure at one T keeps the others), largest last.
    for (const T of HISTORY_TS) await measure(reencode, [T], T === 64 ? once : plan.reencode)
  } finally {
    await worker?.stop()
  }

  if (o.http) {
    const dir = mkdtempSync(path.join(tmpdir(), 'stepkv-bench-'))
    const dev = await startDev('wrangler.toml', dir)
    try {
      const httpConfigs = o.quick ? carried.filter((c) => ['full', 'tempofit', 'guikv-25-kivi4', 'window-25'].includes(c.id)) : carried
      const Ts = o.quick ? [1, 8, 32, 64] : HISTORY_TS
      o.log(`HTTP warm-up …`)
      for (const model of ['gui-carried', 'gui-tempo']) {
        const c = carried.find((x) => x.model === model && x.bits === 4)!
        await httpHistory(dev.url, c, frames, [3], once)
      }
      for (const c of httpConfigs) {
        const t0 = performance.now()
        try {
          const points = await httpHistory(dev.url, c, frames, Ts, plan.http)
          for (const p of points)
            records.push({
              config: c.id,
              family: c.family,
              policy: c.policy,
              model: c.model,
              params: c.params,
              ...(c.budgetTokens && { budgetTokens: c.budgetTokens }),
              storage: c.bits === 32 ? 'float32' : 'kivi4',
              layout: c.layout ?? 'dynamic',
              T: p.T,
              runtime: 'http',
              stepMs: latencySummary(p.samplesMs),
              bytes: p.bytes,
              memoryTokens: p.memoryTokens,
              parts: p.serverMs,
              repeatedBy: p.repeatedBy,
            })
          o.log(`${c.id.padEnd(16)} http    ${points.map((pt) => `T${pt.T} ${latencySummary(pt.samplesMs).p50}`).join('  ')} ms  (${((performance.now() - t0) / 1000).toFixed(1)} s)`)
        } catch (e) {
          for (const T of Ts) failures.push({ config: c.id, runtime: 'http', T, error: `${errorText(e)} [wrangler: ${devTail(dev)}]` })
          o.log(`${c.id.padEnd(16)} http    failed: ${errorText(e)}`)
        }
      }
    } finally {
      await dev.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }

  // Correctness: re-encoding T frames decides as the full carried cache after the same T frames.
  const agree = HISTORY_TS.flatMap((T) => {
    const a = records.find((r) => r.config === 'reencode' && r.T === T && r.runtime === 'node')
    const b = records.find((r) => r.config === 'full' && r.T === T && r.runtime === 'node')
    return a && b ? [{ T, same: JSON.stringify(a.action) === JSON.stringify(b.action) }] : []
  })
  return {
    frames: { count: frames.length, source: 'sim/gui expert episodes, tasks in order, seeds 1…', tokensPerFrame: guiFrameTokens(frames[0], visualTokens), prompt8Tokens },
    configs,
    plans: plan,
    records,
    failures,
    checks: { reencodeActionMatchesFull: agree },
    targets: [...historyTargets(records, 'node'), ...historyTargets(records, 'workerd').filter((t) => t.id.startsWith('flat-') || t.id.startsWith('vs-'))
      .map((t) => ({ ...t, id: `${t.id}-workerd` })), ...historyTargets(records, 'http').filter((t) => t.id.startsWith('flat-')).map((t) => ({ ...t, id: `${t.id}-http` }))],
  }
}
