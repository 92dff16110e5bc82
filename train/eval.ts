/**
 * @module Closed-loop evaluation of an exported policy in its simulator with ORT-web (wasm, Node):
 * success rate per task with memory (carried: the full KV cache; tempo: the bank of the last 8
 * frames with the Frame-Gap Temporal Bias) and memoryless (no past, empty bank), on seeds the
 * training data did not use. Bundled by train/bundle.sh into train/dist/eval.mjs
 * (onnxruntime-web stays external: it is resolved from node_modules at run time).
 *
 *   node train/dist/eval.mjs --model models/gui-carried [--episodes 30] [--mode memory|memoryless|both]
 *        [--out result.json]
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ortForNode, type Ort } from '../gpu/ort-node.ts'
import { GuiEnv, decodeAction as decodeGui, type Action as GuiAction, TASKS as GUI_TASKS } from '../sim/gui/index.ts'
import { RobotEnv, TASKS as ROBOT_TASKS, streamSeed, type Action as RobotAction } from '../sim/robot/index.ts'

type Session = Awaited<ReturnType<Ort['InferenceSession']['create']>>
type Tensor = InstanceType<Ort['Tensor']>
interface Segment {
  name: string
  offset: number
  size: number
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Manifest = any

/** Frames the TempoFit bank holds (memory/policies/tempofit.ts default). */
const TEMPO_FRAMES = 8

interface Observation {
  frames: { width: number; height: number; data: Uint8Array }[]
  proprio?: Float32Array
  instruction: string
}

/** The policy with its memory for one episode. */
class Agent {
  #past: Float32Array[][] = [] // per layer [key, value] each [kvHeads, P, headDim]
  #pastTokens = 0
  #nextPosition = 0
  #bank: { seq: number; tokens: number; kv: Float32Array[][] }[] = [] // per frame, per memory layer [k, v]
  #seq = 0

  constructor(
    readonly ort: Ort,
    readonly m: Manifest,
    readonly encoder: Session,
    readonly decoder: Session,
    readonly memory: boolean,
  ) {}

  async act(obs: Observation): Promise<Float32Array> {
    const { ort, m } = this
    const feeds: Record<string, Tensor> = {}
    m.encoder.cameras.forEach((c: { input: string; height: number; width: number }, i: number) => {
      feeds[c.input] = new ort.Tensor('uint8', obs.frames[i].data, [1, c.height, c.width, 3])
    })
    if (m.encoder.proprioSize) feeds.proprio = new ort.Tensor('float32', obs.proprio!, [1, m.encoder.proprioSize])
    const bytes = new TextEncoder().encode(obs.instruction).slice(0, m.encoder.instructionMaxBytes)
    feeds.instruction = new ort.Tensor('int64', BigInt64Array.from(bytes, (b) => BigInt(b)), [1, bytes.length])
    const embeds = (await this.encoder.run(feeds)).inputs_embeds
    const S = embeds.dims[1]
    const tempo = m.tempoLayers.length > 0
    const carried = this.memory && !tempo
    const P = carried ? this.#pastTokens : 0
    const start = carried ? this.#nextPosition : 0
    const Hkv = m.kvHeads
    const Dh = m.headDim
    const d: Record<string, Tensor> = {
      inputs_embeds: embeds,
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(start + i)), [1, S]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(P + S).fill(1n), [1, P + S]),
      obs_window: new ort.Tensor('int64', BigInt64Array.of(BigInt(Math.min(8, S))), []),
    }
    for (let l = 0; l < m.layers; l++) {
      d[`past_key_values.${l}.key`] = new ort.Tensor('float32', carried && P ? this.#past[l][0] : new Float32Array(0), [1, Hkv, P, Dh])
      d[`past_key_values.${l}.value`] = new ort.Tensor('float32', carried && P ? this.#past[l][1] : new Float32Array(0), [1, Hkv, P, Dh])
    }
    this.#seq++
    if (tempo) {
      const frames = this.memory ? this.#bank : []
      const M = frames.reduce((a, f) => a + f.tokens, 0)
      m.tempoLayers.forEach((l: number, i: number) => {
        for (const [part, k] of [['key', 0], ['value', 1]] as const)
          d[`tempo.${l}.${part}`] = new ort.Tensor('float32', concatTokens(frames.map((f) => [f.kv[i][k], f.tokens]), Hkv, Dh), [1, Hkv, M, Dh])
      })
      const slopes = Array.from({ length: Hkv }, (_, h) => 2 ** ((-8 * (h + 1)) / Hkv))
      const beta = 1 / slopes[0]
      const bias = new Float32Array(Hkv * M)
      for (let h = 0; h < Hkv; h++) {
        let j = 0
        for (const f of frames) for (let t = 0; t < f.tokens; t++) bias[h * M + j++] = -beta * slopes[h] * Math.abs(this.#seq - f.seq)
      }
      d.tempo_bias = new ort.Tensor('float32', bias, [1, Hkv, 1, M])
    }
    const out = await this.decoder.run(d)
    const A = m.actionHead.size
    const logits = out.logits.data as Float32Array
    if (carried) {
      this.#past = Array.from({ length: m.layers }, (_, l) => [out[`present.${l}.key`].data as Float32Array, out[`present.${l}.value`].data as Float32Array])
      this.#pastTokens = P + S
      this.#nextPosition = start + S
    }
    if (tempo && this.memory) {
      this.#bank.push({ seq: this.#seq, tokens: S, kv: m.tempoLayers.map((l: number) => [out[`tempo_prefix.${l}.key`].data, out[`tempo_prefix.${l}.value`].data]) })
      if (this.#bank.length > TEMPO_FRAMES) this.#bank.shift()
    }
    return logits.slice(logits.length - A)
  }
}

/** Concatenates [kvHeads, n_i, Dh] blocks along tokens → [kvHeads, Σn_i, Dh]. */
function concatTokens(parts: [Float32Array, number][], Hkv: number, Dh: number): Float32Array {
  const M = parts.reduce((a, [, n]) => a + n, 0)
  const out = new Float32Array(Hkv * M * Dh)
  for (let h = 0; h < Hkv; h++) {
    let at = 0
    for (const [data, n] of parts) {
      out.set(data.subarray(h * n * Dh, (h + 1) * n * Dh), (h * M + at) * Dh)
      at += n
    }
  }
  return out
}

const argmax = (x: Float32Array, s: Segment) => {
  let best = 0
  for (let i = 1; i < s.size; i++) if (x[s.offset + i] > x[s.offset + best]) best = i
  return best
}

function guiAction(head: Float32Array, segments: Segment[]): GuiAction {
  const seg = (name: string) => segments.find((s) => s.name === name)!
  const type = argmax(head, seg('type'))
  if (type === 0) return decodeGui(argmax(head, seg('click_y')) * 16 + argmax(head, seg('click_x')))
  if (type === 1) return { type: 'type', text: [0, 1, 2, 3].map((i) => argmax(head, seg(`digit${i}`))).join('') }
  if (type === 2) return { type: 'scroll', dy: argmax(head, seg('scroll')) === 0 ? -1 : 1 }
  return { type: 'done' }
}

function robotChunk(head: Float32Array, segments: Segment[]): RobotAction[] {
  const move = segments.find((s) => s.name === 'move')!
  const grip = segments.find((s) => s.name === 'grip')!
  return Array.from({ length: grip.size }, (_, k) => ({
    dx: head[move.offset + 2 * k],
    dy: head[move.offset + 2 * k + 1],
    grip: head[grip.offset + k] >= 0 ? 1 : 0,
  }))
}

async function episode(agent: Agent, domain: string, task: string, seed: number): Promise<boolean> {
  const segments: Segment[] = agent.m.actionHead.segments
  if (domain === 'gui') {
    const env = new GuiEnv()
    let obs = env.reset(task, seed)
    for (;;) {
      const r = env.step(guiAction(await agent.act({ frames: [obs.frame], instruction: obs.instruction }), segments))
      if (r.done) return r.success
      obs = r
    }
  }
  const env = new RobotEnv()
  let obs = env.reset(task, seed)
  for (;;) {
    const r = env.step(robotChunk(await agent.act(obs), segments))
    if (r.done) return r.success
    obs = r
  }
}

async function main() {
  const argv = process.argv.slice(2)
  const get = (name: string, fallback?: string) => {
    const i = argv.indexOf(`--${name}`)
    if (i >= 0) return argv[i + 1]
    if (fallback === undefined) throw new Error(`missing --${name}`)
    return fallback
  }
  const dir = get('model')
  const episodes = Number(get('episodes', '30'))
  const modeArg = get('mode', 'both')
  const m: Manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))
  const ort = ortForNode()
  const encoder = await ort.InferenceSession.create(readFileSync(join(dir, m.encoder.file)))
  const decoder = await ort.InferenceSession.create(readFileSync(join(dir, m.file)))
  const tasks = m.domain === 'gui' ? GUI_TASKS.map((t) => ({ name: t.name, memory: t.memory })) : ROBOT_TASKS.map((t) => ({ name: t.name, memory: t.memory }))
  const t0 = performance.now()
  const results: Record<string, Record<string, number>> = {}
  const memories = modeArg === 'both' ? [true, false] : [modeArg === 'memory']
  for (const memory of memories) {
    const mode = memory ? (m.tempoLayers.length ? 'tempo' : 'carried') : 'memoryless'
    results[mode] = {}
    for (const task of tasks) {
      let ok = 0
      for (let i = 0; i < episodes; i++) {
        const seed = streamSeed(0x5eed, `eval:${task.name}:${i}`) // not the training seeds (streamSeed(seed, 'episode:i'))
        ok += (await episode(new Agent(ort, m, encoder, decoder, memory), m.domain, task.name, seed)) ? 1 : 0
      }
      results[mode][task.name] = ok / episodes
    }
  }
  const seconds = (performance.now() - t0) / 1000
  const line = (mode: string) =>
    tasks.map((t) => `${t.name}${t.memory ? '*' : ''} ${(100 * results[mode][t.name]).toFixed(0)}%`).join(', ')
  for (const mode of Object.keys(results))
    console.log(`eval ${m.id} ${mode}: ${line(mode)}  (${episodes} episodes/task, * = memory task)`)
  const out = argv.includes('--out') ? get('out') : undefined
  if (out) writeFileSync(out, JSON.stringify({ id: m.id, episodes, seconds, results, tasks }, null, 2))
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
