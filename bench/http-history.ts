/**
 * @module The end-to-end figure of the `history` bench: the same GUI session played over HTTP
 * against `wrangler dev` (the stepkv Worker, Durable Object with on-disk SQLite storage), timed at
 * the client around each `POST /v1/sessions/:id/steps` (msgpack; routing, auth, validation, load,
 * the step, memory encode and the storage transaction). To repeat step T from the same memory,
 * the memory is exported before it (`GET …/memory`) and imported again before each repetition
 * (`PUT …/memory` with `If-Match` the session's current ETag rolls it back to seq T − 1); the
 * import is not timed. The repetitions of all T run in interleaved rounds, as in process.
 */
import { api, DEV_KEY } from '../sim/client.ts'
import type { GuiObservation } from './frames.ts'
import type { HistoryConfig, RepPlan } from './history-core.ts'

/** One HTTP point: client-side latencies and the server's own timings (medians, ms). */
export interface HttpPoint {
  T: number
  samplesMs: number[]
  /** Medians of the reply's `timings` (loadMs, encodeMs, prefillMs, decodeMs, policyMs, persistMs). */
  serverMs: Record<string, number>
  /** `memory.bytes` of the reply: the stored blob (bytes). */
  bytes: number
  memoryTokens: number
  /** How step T was repeated: `import` (rolled back), or `single` when the import was refused. */
  repeatedBy: 'import' | 'single'
}

type Client = ReturnType<typeof api>
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

async function call<T>(what: string, r: Promise<{ status: number; data: T }>, ok: number): Promise<T> {
  const res = await r
  if (res.status !== ok) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.data).slice(0, 300)}`)
  return res.data
}

/**
 * Imports `blob` into session `id`, conditional on its current ETag (`GET /v1/sessions/:id`).
 * @returns the HTTP status of the PUT (200 when imported)
 */
export async function importMemory(url: string, client: Client, id: string, blob: Uint8Array): Promise<number> {
  const info = await client.info(id)
  const etag: string | undefined = info.data?.etag
  const res = await fetch(`${url}/v1/sessions/${id}/memory`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${DEV_KEY}`, 'content-type': 'application/x-stepkv-memory', ...(etag && { 'if-match': etag }) },
    body: blob as Uint8Array<ArrayBuffer>,
  })
  await res.arrayBuffer()
  return res.status
}

/** Creates a session of `config` (float32 or KIVI 4-bit storage). @returns its id */
export async function createSession(client: Client, config: HistoryConfig): Promise<string> {
  const body = {
    model: config.model,
    policy: { name: config.policy, params: config.params },
    memoryDtype: config.bits === 32 ? 'float32' : 'kivi',
    ...(config.bits === 4 && { kivi: { bits: 4 } }),
    ...(config.layout && { layout: config.layout }),
  }
  return (await call<{ id: string }>(`create ${config.id}`, client.createSession(body), 201)).id
}

/**
 * Plays `config` over HTTP for frames 1 … max(Ts), then repeats the steps T ∈ Ts in `plan`'s
 * interleaved rounds (warm-up rounds, the play-through's run being the first, then `reps`).
 * @param url a running `wrangler dev` of the stepkv Worker
 * @returns one point per T in `Ts`
 * @throws Error naming the call when the server answers an unexpected status
 */
export async function httpHistory(url: string, config: HistoryConfig, frames: readonly GuiObservation[], Ts: readonly number[], plan: RepPlan): Promise<HttpPoint[]> {
  if (config.reencode) throw new RangeError('re-encoding is not expressible over the API (one frame per GUI observation)')
  const client = api(fetch, url)
  const id = await createSession(client, config)
  const points: HttpPoint[] = []
  const step = async (T: number) => {
    const observation = { image: frames[T - 1].image, instruction: frames[T - 1].instruction }
    const start = performance.now()
    const reply = await call<any>(`step ${T} of ${config.id}`, client.step(id, T, observation, undefined, true), 200)
    return { ms: performance.now() - start, reply }
  }
  try {
    // Play the session once, keeping the memory before each measured T (this run of step T is the
    // first warm-up), then repeat the steps in interleaved rounds: each round imports the memory
    // before T and runs step T, for every T (machine-load drift hits every T alike).
    const before = new Map<number, Uint8Array>()
    const first = new Map<number, Awaited<ReturnType<typeof step>>>()
    for (let T = 1; T <= Math.max(...Ts); T++) {
      if (Ts.includes(T)) before.set(T, (await call<Uint8Array>(`export before ${T}`, client.exportMemory(id), 200)) as Uint8Array)
      const run = await step(T)
      if (Ts.includes(T)) first.set(T, run)
    }
    const runs = new Map(Ts.map((T) => [T, [] as Awaited<ReturnType<typeof step>>[]]))
    const single = new Set<number>() // the import was refused: the one real run stands alone
    for (let round = 1; round < plan.warmup + plan.reps; round++) {
      for (const T of Ts) {
        if (single.has(T)) continue
        if ((await importMemory(url, client, id, before.get(T)!)) !== 200) {
          single.add(T)
          continue
        }
        const run = await step(T)
        if (round >= plan.warmup) runs.get(T)!.push(run)
      }
    }
    for (const T of Ts) {
      const measured = single.has(T) || !runs.get(T)!.length ? [first.get(T)!] : runs.get(T)!
      const last = measured[measured.length - 1].reply
      const keys = Object.keys(last.timings ?? {})
      points.push({
        T,
        samplesMs: measured.map((r) => r.ms),
        serverMs: Object.fromEntries(keys.map((k) => [k, median(measured.map((r) => r.reply.timings[k]))])),
        bytes: last.memory.bytes,
        memoryTokens: last.memory.tokensPerLayer[0],
        repeatedBy: single.has(T) ? 'single' : 'import',
      })
    }
  } finally {
    await client.call('DELETE', `/v1/sessions/${id}`).catch(() => undefined)
  }
  return points
}
