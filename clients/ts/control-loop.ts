/**
 * @module A control loop at a fixed rate over stepkv steps, with deadline-miss accounting — the
 * timing rules of the demo's robot client (`sim/clients/robot.ts`), for any robot or agent.
 *
 * Rate R Hz, period T = 1000 / R ms. Tick k: observe, send the step, wait for the reply (latency
 * L ms, client side). The reply's action is a chunk (an array, chunk[i] meant for tick k + i; a
 * single action is a chunk of one).
 * - L ≤ T: on time; chunk[0] runs for tick k.
 * - L > T: a deadline miss. n = ⌈L / T⌉ − 1 ticks passed without the reply: they run the previous
 *   chunk's next unused actions, then holds (`action: undefined`). The late chunk runs
 *   time-aligned: chunk[n] for tick k + n (a hold if n ≥ its length).
 * The next request leaves at tick k + n + 1, at its wall-clock start (the loop sleeps until then).
 * `realtime: false` runs one request per tick, as fast as replies come, chunk[0] each (misses are
 * still counted): reproducible runs and tests.
 */
import type { StepReply } from './types.ts'

/** Monotonic clock (ms) and sleep; inject a virtual one in tests. */
export interface Clock {
  now(): number
  sleep(ms: number): Promise<void>
}

/** `performance.now()` and `setTimeout`. */
export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
}

/** What runs at one tick. */
export interface TickCommand<A = unknown> {
  tick: number
  /** The action for this tick, or undefined: hold (no fresh action and the last chunk is used up). */
  action: A | undefined
  /** `fresh`: from the reply of this tick's request (or its time-aligned late chunk); `leftover`:
   * the previous chunk while a reply was late; `hold`: nothing left to run. */
  source: 'fresh' | 'leftover' | 'hold'
}

export interface ControlLoopOptions<O, A = unknown> {
  /** Control rate (Hz), > 0. */
  rateHz: number
  /** Reads the state at the start of tick `tick`; undefined ends the loop. */
  observe(tick: number): O | undefined | Promise<O | undefined>
  /** Sends the step, e.g. `(o) => session.step(o)`; errors end the loop (they are rethrown). */
  step(observation: O): Promise<StepReply>
  /** Runs one tick's command (in tick order, exactly once per tick). */
  act(command: TickCommand<A>): void | Promise<void>
  /** Most ticks to run; default unbounded (until `observe` returns undefined or `signal` aborts). */
  maxTicks?: number
  /** Deadline handling and pacing (module note); default true. */
  realtime?: boolean
  signal?: AbortSignal
  clock?: Clock
  /** Called for each late reply (after its commands ran). */
  onDeadlineMiss?(miss: { tick: number; latencyMs: number; ticksPassed: number }): void
}

export interface ControlLoopStats {
  /** Ticks run (each got exactly one `act`). */
  ticks: number
  /** Step requests sent. */
  steps: number
  /** Replies later than the period. */
  deadlineMisses: number
  /** Ticks that ran without a fresh action (leftovers and holds). */
  heldTicks: number
  /** Client-side latency of each step (ms). */
  latencyMs: number[]
  /** p50 / p95 / max of `latencyMs` (ms; 0 with no step). */
  p50Ms: number
  p95Ms: number
  maxMs: number
}

/** The chunk of a reply's action: an array as is, anything else as a chunk of one. */
function chunkOf<A>(action: unknown): readonly A[] {
  return Array.isArray(action) ? (action as A[]) : [action as A]
}

/** Nearest-rank percentile of `xs` (ms). */
function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return 0
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

/**
 * Runs the loop until `observe` returns undefined, `maxTicks` ticks ran or `signal` aborts.
 * @returns deadline misses, held ticks and latencies
 * @throws RangeError if `rateHz` is not > 0; whatever `step`, `observe` or `act` throw
 */
export async function runControlLoop<O, A = unknown>(o: ControlLoopOptions<O, A>): Promise<ControlLoopStats> {
  if (!(o.rateHz > 0)) throw new RangeError(`rateHz must be > 0, got ${o.rateHz}`)
  const periodMs = 1000 / o.rateHz
  const clock = o.clock ?? realClock
  const realtime = o.realtime ?? true
  const maxTicks = o.maxTicks ?? Infinity
  const latencyMs: number[] = []
  let deadlineMisses = 0
  let heldTicks = 0
  let plan: { chunk: readonly A[]; next: number } | undefined
  const leftover = (tick: number): TickCommand<A> => {
    heldTicks++
    if (plan && plan.next < plan.chunk.length) return { tick, action: plan.chunk[plan.next++], source: 'leftover' }
    return { tick, action: undefined, source: 'hold' }
  }
  let tick = 0
  while (tick < maxTicks && !o.signal?.aborted) {
    const start = clock.now()
    const observation = await o.observe(tick)
    if (observation === undefined) break
    const reply = await o.step(observation)
    const latency = clock.now() - start
    latencyMs.push(latency)
    const late = latency > periodMs
    if (late) deadlineMisses++
    const passed = realtime ? Math.min(maxTicks - tick - 1, Math.max(0, Math.ceil(latency / periodMs) - 1)) : 0
    for (let j = 0; j < passed; j++) await o.act(leftover(tick + j))
    plan = { chunk: chunkOf<A>(reply.action), next: passed }
    const at = tick + passed
    if (plan.next < plan.chunk.length) await o.act({ tick: at, action: plan.chunk[plan.next++], source: 'fresh' })
    else {
      heldTicks++
      await o.act({ tick: at, action: undefined, source: 'hold' })
    }
    if (late) o.onDeadlineMiss?.({ tick, latencyMs: latency, ticksPassed: passed })
    tick = at + 1
    if (realtime) await clock.sleep(start + (passed + 1) * periodMs - clock.now())
  }
  return {
    ticks: tick,
    steps: latencyMs.length,
    deadlineMisses,
    heldTicks,
    latencyMs,
    p50Ms: percentile(latencyMs, 50),
    p95Ms: percentile(latencyMs, 95),
    maxMs: latencyMs.length ? Math.max(...latencyMs) : 0,
  }
}
