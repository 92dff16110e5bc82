/**
 * @module `npm run bench -- load [--sessions N] [--steps T] [--chaos P] [--url URL] [--json FILE]`:
 * the load test of issue 6 against `wrangler dev` on loopback (started here unless `--url`).
 *
 * N sessions (default 100) run concurrently, each T steps (default 50) of deterministic text
 * observations on `tiny-gqa` (even sessions: full cache; odd: a 2 + 24-token window; every fourth
 * float16). Mixed in, each with probability P (default 0.15) per step: an out-of-order seq (ahead,
 * or two behind) sent before the step (must be 409 and change nothing), the step sent twice at once
 * (one runs, the other replays: both 200 with the same reply), and a retry of the step just done
 * (200, the same reply). A 5xx or network error is retried with the same seq (safe: a repeated
 * seq replays). Afterwards each session is replayed sequentially, without chaos, in a fresh
 * session, and the two exported memories must be the same bytes.
 *
 * Result (`bench/results/load.json`): sessions, steps, requests, `lost` (steps acknowledged but not
 * in the final state), `duplicated` (a repeated seq that ran again: a reply that differs from the
 * first), `mismatches` (final memory ≠ sequential replay), error counts by status and code, and
 * step latency p50/p95 (ms).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { api } from '../sim/client.ts'
import { startWrangler } from '../sim/wrangler.ts'
import { runMeta } from './meta.ts'

type Client = ReturnType<typeof api>

/** Options of `runLoad` (counts, probability in [0, 1], seconds). */
export interface LoadOptions {
  sessions: number
  steps: number
  chaos: number
  seed: number
  /** Whole run bound (s): past it the run stops and reports what it has. */
  timeoutS: number
}

/** What `runLoad` measures. */
export interface LoadResult {
  sessions: number
  stepsPerSession: number
  /** Distinct steps acknowledged (200 on first run). */
  steps: number
  /** Every HTTP request of the load phase. */
  requests: number
  lost: number
  duplicated: number
  mismatches: number
  /** Replies that were not what the protocol promises (5xx, network errors, unexpected 4xx). */
  errors: { total: number; byStatus: Record<string, number>; byCode: Record<string, number> }
  /** Protocol answers that were expected: 409 for out-of-order seqs, replays of repeated seqs. */
  expected: { outOfOrder409: number; retryReplays: number; concurrentDuplicates: number; retriedAfterError: number }
  latencyMs: { p50: number; p95: number; max: number; count: number }
  wallS: number
  stepsPerS: number
  replayWallS: number
  timedOut: boolean
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const WORDS = ['menu', 'form', 'list', 'code', 'grip', 'left', 'red', 'blue', 'open', 'save']

/** The observation of session `i` at step `seq` (10–40 bytes of text). */
function observation(i: number, seq: number): { text: string } {
  const r = prng(i * 100_003 + seq)
  const words = Array.from({ length: 1 + Math.floor(r() * 5) }, () => WORDS[Math.floor(r() * WORDS.length)])
  return { text: `s${i} t${seq}: ${words.join(' ')}` }
}

/** The session config of session `i`. */
function sessionConfig(i: number) {
  return {
    policy: i % 2 === 0 ? { name: 'full' } : { name: 'window', params: { sinkTokens: 2, recentTokens: 24 } },
    memoryDtype: i % 4 === 3 ? 'float16' : 'float32',
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]
}

/** A reply without its timings (a replay returns the stored bytes, timings included, so they are
 * compared too; this only names what a difference means). */
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

/**
 * Runs the load test against a server at `url`.
 * @param log progress lines
 */
export async function runLoad(url: string, o: LoadOptions, log: (s: string) => void): Promise<LoadResult> {
  const client = api(fetch, url)
  const deadline = Date.now() + o.timeoutS * 1000
  const latencies: number[] = []
  const byStatus: Record<string, number> = {}
  const byCode: Record<string, number> = {}
  const expected = { outOfOrder409: 0, retryReplays: 0, concurrentDuplicates: 0, retriedAfterError: 0 }
  let requests = 0
  let steps = 0
  let duplicated = 0
  let errors = 0
  let timedOut = false

  const error = (status: number | string, code?: string) => {
    errors++
    byStatus[status] = (byStatus[status] ?? 0) + 1
    if (code) byCode[code] = (byCode[code] ?? 0) + 1
  }
  /** One step request, timed; network errors come back as status 0. */
  const send = async (c: Client, id: string, seq: number, obs: unknown, msgpack: boolean) => {
    requests++
    const t0 = performance.now()
    try {
      const r = await c.step(id, seq, obs, undefined, msgpack)
      latencies.push(performance.now() - t0)
      return r
    } catch (e) {
      return { status: 0, type: '', data: { code: `network: ${(e as Error).message}` } as any }
    }
  }

  async function session(i: number): Promise<{ id: string; acked: number }> {
    const r = prng(o.seed * 7919 + i)
    const created = await client.createSession(sessionConfig(i))
    requests++
    if (created.status !== 201) throw new Error(`session ${i}: create → ${created.status} ${JSON.stringify(created.data)}`)
    const id = created.data.id as string
    let acked = 0
    for (let seq = 1; seq <= o.steps; seq++) {
      if (Date.now() > deadline) {
        timedOut = true
        break
      }
      const obs = observation(i, seq)
      const msgpack = r() < 0.5
      if (r() < o.chaos) {
        const wrong = r() < 0.5 || seq < 3 ? seq + 1 + Math.floor(r() * 2) : seq - 2
        const bad = await send(client, id, wrong, observation(i, wrong), msgpack)
        if (bad.status === 409) expected.outOfOrder409++
        else error(bad.status, bad.data?.code ?? 'out-of-order seq accepted')
      }
      // The step, possibly twice at once; retried with the same seq after a 5xx or network error.
      let reply: any
      for (let attempt = 0; attempt < 4 && reply === undefined; attempt++) {
        if (attempt > 0) expected.retriedAfterError++
        const twice = r() < o.chaos
        const answers = await Promise.all(twice ? [send(client, id, seq, obs, msgpack), send(client, id, seq, obs, msgpack)] : [send(client, id, seq, obs, msgpack)])
        const ok = answers.filter((a) => a.status === 200)
        for (const a of answers) if (a.status !== 200 && !(a.status >= 500 || a.status === 0)) error(a.status, a.data?.code)
        for (const a of answers) if (a.status >= 500 || a.status === 0) error(a.status, a.data?.code)
        if (ok.length === 0) continue
        reply = ok[0].data
        if (twice && ok.length === 2) {
          expected.concurrentDuplicates++
          if (!same(ok[0].data, ok[1].data)) duplicated++
        }
      }
      if (reply === undefined) break
      if (reply.seq !== seq) error('bad reply', `reply seq ${reply.seq} for ${seq}`)
      acked = seq
      steps++
      if (r() < o.chaos) {
        const again = await send(client, id, seq, obs, msgpack)
        if (again.status === 200) {
          expected.retryReplays++
          if (!same(again.data, reply)) duplicated++
        } else error(again.status, again.data?.code)
      }
    }
    return { id, acked }
  }

  log(`load: ${o.sessions} sessions × ${o.steps} steps, chaos ${o.chaos} …`)
  const t0 = performance.now()
  let done = 0
  const results = await Promise.all(
    Array.from({ length: o.sessions }, (_, i) =>
      session(i).then((s) => {
        if (++done % 10 === 0) log(`  ${done}/${o.sessions} sessions done (${((performance.now() - t0) / 1000).toFixed(0)} s)`)
        return s
      }),
    ),
  )
  const wallS = (performance.now() - t0) / 1000

  // Lost: acknowledged steps the final state does not hold. Mismatch: final memory ≠ replay.
  log(`load phase ${wallS.toFixed(1)} s; replaying each session sequentially …`)
  const t1 = performance.now()
  let lost = 0
  let mismatches = 0
  await Promise.all(
    results.map(async ({ id, acked }, i) => {
      const info = await client.info(id)
      if (info.status !== 200) {
        lost += acked
        return
      }
      if (info.data.seq !== acked) lost += Math.max(0, acked - info.data.seq)
      const replay = (await client.createSession(sessionConfig(i))).data.id as string
      for (let seq = 1; seq <= acked; seq++) {
        const s = await client.step(replay, seq, observation(i, seq))
        if (s.status !== 200) throw new Error(`replay of session ${i} step ${seq} → ${s.status} ${JSON.stringify(s.data)}`)
      }
      const [mine, theirs] = [await client.exportMemory(id), await client.exportMemory(replay)]
      const blobs = mine.status === 200 && theirs.status === 200 && mine.data instanceof Uint8Array && theirs.data instanceof Uint8Array
      if (!blobs || Buffer.compare(Buffer.from(mine.data), Buffer.from(theirs.data)) !== 0) mismatches++
      await client.call('DELETE', `/v1/sessions/${replay}`)
      await client.call('DELETE', `/v1/sessions/${id}`)
    }),
  )
  const replayWallS = (performance.now() - t1) / 1000
  const sorted = latencies.sort((a, b) => a - b)
  const round = (x: number) => Math.round(x * 10) / 10
  return {
    sessions: o.sessions,
    stepsPerSession: o.steps,
    steps,
    requests,
    lost,
    duplicated,
    mismatches,
    errors: { total: errors, byStatus, byCode },
    expected,
    latencyMs: { p50: round(percentile(sorted, 0.5)), p95: round(percentile(sorted, 0.95)), max: round(sorted.at(-1) ?? 0), count: sorted.length },
    wallS: round(wallS),
    stepsPerS: round(steps / wallS),
    replayWallS: round(replayWallS),
    timedOut,
  }
}

/** The `load` suite's command line (see the module note). */
export async function loadCli(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      sessions: { type: 'string', default: '100' },
      steps: { type: 'string', default: '50' },
      chaos: { type: 'string', default: '0.15' },
      seed: { type: 'string', default: '1' },
      timeout: { type: 'string', default: '900' },
      url: { type: 'string' },
      json: { type: 'string' },
    },
  })
  const o: LoadOptions = { sessions: Number(values.sessions), steps: Number(values.steps), chaos: Number(values.chaos), seed: Number(values.seed), timeoutS: Number(values.timeout) }
  if (![o.sessions, o.steps, o.seed, o.timeoutS].every((n) => Number.isInteger(n) && n > 0) || !(o.chaos >= 0 && o.chaos <= 1))
    throw new Error('--sessions, --steps, --seed and --timeout must be positive integers, --chaos in [0, 1]')
  const log = (s: string) => process.stdout.write(s + '\n')
  const dir = values.url ? undefined : mkdtempSync(path.join(tmpdir(), 'stepkv-load-'))
  const server = dir ? await startWrangler(dir) : undefined
  try {
    const url = values.url ?? server!.url
    const result = await runLoad(url, o, log)
    const file = values.json ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), 'results', 'load.json')
    mkdirSync(path.dirname(file), { recursive: true })
    writeFileSync(file, JSON.stringify({ suite: 'load', meta: runMeta(), server: values.url ? values.url : 'wrangler dev (loopback, started by the bench)', model: 'tiny-gqa', ...result }, null, 2) + '\n')
    log(`sessions ${result.sessions}, steps ${result.steps}, requests ${result.requests}: lost ${result.lost}, duplicated ${result.duplicated}, mismatches ${result.mismatches}, errors ${result.errors.total}; step p50 ${result.latencyMs.p50} ms, p95 ${result.latencyMs.p95} ms; ${result.stepsPerS} steps/s`)
    log(`wrote ${file}`)
    if (result.lost || result.duplicated || result.mismatches || result.errors.total || result.timedOut) process.exitCode = 1
  } finally {
    await server?.kill()
    if (dir) rmSync(dir, { recursive: true, force: true })
  }
}
