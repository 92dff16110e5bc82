/**
 * @module `stepkv latency`: per-step latency of the WebSocket transport against HTTP on the same
 * work — two sessions of the same model and policy, the same observations, steps alternating
 * between them (HTTP step i, then WebSocket step i) so both see the same machine load. Client-side
 * wall time per step (ms): HTTP is `POST …/steps` in msgpack over a keep-alive connection
 * (`StepkvClient`), WebSocket a msgpack frame on one open socket (`SocketSession`).
 */
import { StepkvClient } from '../clients/ts/index.ts'
import { RobotEnv } from '../sim/robot/index.ts'

export interface LatencyOptions {
  url: string
  apiKey: string
  /** Steps per transport (after `warmup` unmeasured ones each). */
  steps: number
  warmup: number
  /** `robot-carried` (raw RGB8 frames + proprio + instruction, 4 KB) or `tiny-gqa` (text). */
  model: 'robot-carried' | 'tiny-gqa'
  progress?: (line: string) => void
}

export interface TransportStats {
  p50Ms: number
  p95Ms: number
  meanMs: number
  minMs: number
}

export interface LatencyResult {
  model: string
  policy: { name: string; params: Record<string, number> }
  steps: number
  http: TransportStats
  websocket: TransportStats
  /** websocket p50 / http p50. */
  p50Ratio: number
}

function stats(xs: number[]): TransportStats {
  const s = [...xs].sort((a, b) => a - b)
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
  const r = (x: number) => Math.round(x * 100) / 100
  return { p50Ms: r(at(50)), p95Ms: r(at(95)), meanMs: r(s.reduce((a, b) => a + b, 0) / s.length), minMs: r(s[0]) }
}

/** The i-th observation of the benchmark (deterministic). */
function observations(model: LatencyOptions['model'], count: number): Record<string, unknown>[] {
  if (model === 'tiny-gqa') return Array.from({ length: count }, (_, i) => ({ text: `tick ${i}: gripper at ${(i * 37) % 100}` }))
  const env = new RobotEnv()
  let obs = env.reset('reach-red', 11)
  const out: Record<string, unknown>[] = []
  for (let i = 0; i < count; i++) {
    out.push({ images: obs.frames.map((f) => ({ width: f.width, height: f.height, data: f.data })), proprio: [...obs.proprio], instruction: obs.instruction })
    if (env.done) obs = env.reset('reach-red', 11 + i)
    else obs = env.step({ dx: Math.cos(i), dy: Math.sin(i), grip: 0 })
  }
  return out
}

/**
 * Measures both transports.
 * @throws what the client throws (a problem reply, no server)
 */
export async function measureLatency(o: LatencyOptions): Promise<LatencyResult> {
  const kv = new StepkvClient({ baseUrl: o.url, apiKey: o.apiKey, retries: 0 })
  // A bounded window: the step cost stays flat, so the transports are what differs.
  const policy = { name: 'window', params: { sinkTokens: 4, recentTokens: o.model === 'tiny-gqa' ? 124 : 160 } }
  const a = await kv.open({ model: o.model, policy })
  const b = await kv.open({ model: o.model, policy })
  const socket = await kv.connect(b.id, b.seq)
  const obs = observations(o.model, o.warmup + o.steps)
  const http: number[] = []
  const ws: number[] = []
  try {
    for (let i = 0; i < obs.length; i++) {
      let t0 = performance.now()
      await a.step(obs[i] as never)
      const h = performance.now() - t0
      t0 = performance.now()
      await socket.step(obs[i] as never)
      const w = performance.now() - t0
      if (i >= o.warmup) {
        http.push(h)
        ws.push(w)
      }
      if (o.progress && (i + 1) % 50 === 0) o.progress(`${i + 1} / ${obs.length} steps per transport`)
    }
  } finally {
    socket.close()
    await a.delete().catch(() => undefined)
    await b.delete().catch(() => undefined)
  }
  const result = { model: o.model, policy, steps: o.steps, http: stats(http), websocket: stats(ws), p50Ratio: 0 }
  result.p50Ratio = Math.round((result.websocket.p50Ms / result.http.p50Ms) * 100) / 100
  return result
}

/** The result as a Markdown table. */
export function formatLatency(r: LatencyResult): string {
  const row = (name: string, s: TransportStats) => `| ${name} | ${s.p50Ms} | ${s.p95Ms} | ${s.meanMs} | ${s.minMs} |`
  return [
    `${r.model}, ${r.policy.name} ${r.policy.params.sinkTokens} + ${r.policy.params.recentTokens}, ${r.steps} steps per transport (client-side ms)`,
    '',
    '| transport | p50 | p95 | mean | min |',
    '|---|---:|---:|---:|---:|',
    row('HTTP POST …/steps (msgpack, keep-alive)', r.http),
    row('WebSocket frame (msgpack)', r.websocket),
    '',
    `WebSocket p50 / HTTP p50 = ${r.p50Ratio}`,
    '',
  ].join('\n')
}
