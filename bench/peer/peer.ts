/**
 * @module `npm run bench -- peer`: the same model and steps through transformers.js' own KV
 * handling — `@huggingface/transformers`' causal-LM `forward` with `past_key_values` carried between
 * steps in its `DynamicCache` — against stepkv's in-process step (`runStep`, full cache) on the same
 * weights: the trained GUI decoder (`gui-carried`, exported to the Llama layout by `./export.ts`,
 * fed `inputs_embeds` from its frame encoder) on the history bench's GUI frames; `--model tiny-gqa`
 * runs the token-id decoder on a text episode.
 *
 * transformers.js is not a dependency of stepkv: it lives in `bench/peer/package.json`, which this
 * suite installs into `bench/peer/node_modules` with `--ignore-scripts` (no onnxruntime-node
 * postinstall download). In Node transformers.js would run on onnxruntime-node (native CPU); here
 * its `require('onnxruntime-node')` is resolved to the onnxruntime-web it ships with (a module
 * resolve hook), so both sides run ORT's WebAssembly CPU backend, one thread, no proxy worker.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import module from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Adapter } from '../../agents/adapter.ts'
import { textAdapter } from '../../agents/text.ts'
import type { ModelManifest } from '../../gpu/manifest.ts'
import { nodeModelSource } from '../../gpu/node-models.ts'
import { ortForNode } from '../../gpu/ort-node.ts'
import { ModelRuntime } from '../../gpu/session.ts'
import type { SessionMemory } from '../../memory/types.ts'
import { initialMemory, policyFor, runStep } from '../../worker/engine.ts'
import { textEpisodes } from '../episodes.ts'
import { guiFrameTokens, guiSessionFrames } from '../frames.ts'
import { nodeDeps } from '../node-deps.ts'
import { latencySummary, median, type LatencySummary } from '../stats.ts'
import { exportLlama } from './export.ts'

const PEER_DIR = path.dirname(fileURLToPath(import.meta.url))
const MODELS_DIR = path.resolve(PEER_DIR, '../../models')
const PKG = '@huggingface/transformers'
const LIMITS = { maxPrefixTokens: 4096, maxMemoryTokens: 1 << 20 }

/** The pinned transformers.js version (bench/peer/package.json). */
export const peerVersion = (): string => JSON.parse(readFileSync(path.join(PEER_DIR, 'package.json'), 'utf8')).dependencies[PKG]

/** Installs bench/peer's dependencies unless the pinned transformers.js is already there:
 * `npm ci` (or `npm install` without a lock) with `--ignore-scripts`, into bench/peer/node_modules. */
export function ensurePeerInstall(log: (s: string) => void): string {
  const want = peerVersion()
  const installed = path.join(PEER_DIR, 'node_modules', PKG, 'package.json')
  if (existsSync(installed) && JSON.parse(readFileSync(installed, 'utf8')).version === want) return want
  const verb = existsSync(path.join(PEER_DIR, 'package-lock.json')) ? 'ci' : 'install'
  log(`peer: npm ${verb} --ignore-scripts in bench/peer (${PKG}@${want}) …`)
  execFileSync('npm', [verb, '--ignore-scripts', '--no-audit', '--no-fund', '--prefix', PEER_DIR], { stdio: 'inherit' })
  return want
}

/** The parts of transformers.js this bench uses (it is not installed for the type checker). */
interface TjsTensor {
  dims: number[]
  data: Float32Array
}
interface Tjs {
  env: { allowRemoteModels: boolean; allowLocalModels: boolean; backends: { onnx: { versions: Record<string, string>; wasm: Record<string, unknown> } } }
  Tensor: new (type: string, data: BigInt64Array | Float32Array, dims: number[]) => TjsTensor
  DynamicCache: new (entries?: Record<string, TjsTensor>) => object
  AutoModelForCausalLM: { from_pretrained(dir: string, options: Record<string, unknown>): Promise<TjsModel> }
}
interface TjsModel {
  constructor: { name: string }
  forward(inputs: Record<string, unknown>): Promise<Record<string, TjsTensor>>
  dispose(): Promise<unknown>
}

let hooked = false
/** Loads transformers.js from bench/peer with onnxruntime-node resolved to its onnxruntime-web, or
 * with `STEPKV_PEER_ORT=main` to stepkv's own onnxruntime-web (the same ORT build on both sides). */
async function loadTransformers(): Promise<Tjs> {
  if (!hooked) {
    const main = process.env.STEPKV_PEER_ORT === 'main'
    const mainOrt = pathToFileURL(module.createRequire(path.resolve(PEER_DIR, '../../package.json')).resolve('onnxruntime-web')).href
    module.registerHooks({
      resolve: (spec, ctx, next) => {
        if (spec !== 'onnxruntime-node') return next(spec, ctx)
        return main ? { url: mainOrt, format: 'commonjs', shortCircuit: true } : next('onnxruntime-web', ctx)
      },
    })
    hooked = true
  }
  const entry = path.join(PEER_DIR, 'node_modules', PKG, 'dist', 'transformers.node.mjs')
  const t = (await import(entry)) as Tjs
  t.env.allowRemoteModels = false
  t.env.allowLocalModels = true
  const wasm = t.env.backends.onnx.wasm
  // transformers.js points wasmPaths at a CDN; the Node build of onnxruntime-web finds its own.
  delete wasm.wasmPaths
  wasm.numThreads = 1
  wasm.proxy = false
  return t
}

/** Largest |a − b| and that over max |a| (the normwise relative error). */
function diff(a: Float32Array, b: Float32Array): { maxAbs: number; rel: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`)
  let maxAbs = 0
  let scale = 0
  for (let i = 0; i < a.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(a[i] - b[i]))
    scale = Math.max(scale, Math.abs(a[i]))
  }
  return { maxAbs, rel: scale ? maxAbs / scale : maxAbs }
}

/** One measured history length. */
export interface PeerPoint {
  T: number
  /** Tokens the step prefills (its frame or text) and tokens of cache it attends to. */
  prefillTokens: number
  pastTokens: number
  stepkv: LatencySummary
  /** Medians of stepkv's step parts (ms, `runStep` timings): encode (frame encoder or tokenizer), ORT run, action decode,
   * memory update (the full cache appends the step's K/V). */
  stepkvParts: { encodeMs: number; prefillMs: number; decodeMs: number; policyMs: number }
  /** transformers.js on the Llama-layout export (outputs: logits and present.* only). */
  transformersjs: LatencySummary
  /** transformers.js on the same export that keeps stepkv's policy outputs (attn_window,
   * attn_total, hidden_norm): the same ORT graph work as stepkv's step. */
  transformersjsSameGraph: LatencySummary
  /** stepkv's step with the bounded policy (`PeerEpisode.bounded`), its memory played through
   * the same T − 1 steps; absent for the text episode. */
  stepkvBounded?: LatencySummary & { policy: string; params: Record<string, number>; memoryTokens: number }
  /** transformers.js p50 / stepkv p50 (Llama-layout export, same-graph export). */
  ratioP50: number
  ratioP50SameGraph: number
  /** Logits of the step, all S positions: stepkv vs transformers.js. */
  logits: { maxAbs: number; rel: number }
  sameAction: boolean
}

export interface PeerResult {
  model: string
  /** What the steps observe (the history bench's GUI frames, or a text episode). */
  episode: string
  steps: number
  reps: number
  warmup: number
  versions: { transformersjs: string; peerOrtWeb: string; stepkvOrtWeb: string }
  backend: string
  points: PeerPoint[]
  /** K/V cache after the last step, stepkv's memory vs transformers.js' DynamicCache. */
  cacheParity: { maxAbs: number; rel: number }
  maxLogitsRel: number
  parityOk: boolean
}

/** The observations of the peer episode and how each side encodes one. */
interface PeerEpisode {
  /** What a step observes: a GUI frame (`image`, `instruction`) or a text chunk (`text`). */
  observations: Record<string, unknown>[]
  adapter: Adapter
  describe: string
  /** A bounded stepkv policy played on the same steps (what stepkv is for; transformers.js has no
   * eviction): GUI-KV at 25 % of the 8-frame prompt, the history bench's `guikv-25`. */
  bounded?: { policy: string; params: Record<string, number> }
}

/** The history bench's GUI frames for a model that takes `inputs_embeds` (its frame encoder
 * encodes them, for both sides); one text episode for a token-id decoder. */
function peerEpisode(m: ModelManifest, maxT: number): PeerEpisode {
  if (m.ports.inputsEmbeds) {
    const frames = guiSessionFrames(maxT)
    return {
      observations: frames.map((f) => ({ image: f.image, instruction: f.instruction })),
      adapter: nodeDeps().adapter(m.id),
      describe: `${maxT} GUI frames of the history bench (guiSessionFrames)`,
      bounded: { policy: 'guikv', params: { budgetTokens: Math.round(0.25 * frames.slice(0, 8).reduce((n, f) => n + guiFrameTokens(f, 48), 0)) } },
    }
  }
  return {
    observations: textEpisodes(1, maxT, 11)[0].map((x) => ({ text: x.text })),
    adapter: textAdapter(m.vocabSize, LIMITS.maxPrefixTokens),
    describe: `one ${maxT}-step text episode`,
  }
}

/** Runs the peer comparison on `model` over steps 1 … max(Ts): by default `gui-carried` on the
 * history bench's GUI frames (the same model and steps as `history` and `codec`); `tiny-gqa`
 * (token ids) runs a text episode.
 * @returns per measured T, both sides' step latency (ms) and their logits' agreement
 * @throws Error if a side's cache or logits do not have the other's shape */
export async function runPeer(opts: { Ts?: number[]; reps?: number; warmup?: number; model?: string; log?: (s: string) => void } = {}): Promise<PeerResult> {
  const log = opts.log ?? (() => {})
  const Ts = opts.Ts ?? [1, 8, 32, 64]
  const reps = opts.reps ?? 100
  const warmup = opts.warmup ?? 5
  const modelId = opts.model ?? 'gui-carried'
  const version = ensurePeerInstall(log)
  const t = await loadTransformers()

  const source = nodeModelSource(modelId)
  const m = source.manifest
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stepkv-peer-'))
  try {
    const bytes = await source.bytes()
    exportLlama(m, bytes, path.join(dir, 'llama'))
    exportLlama(m, bytes, path.join(dir, 'llama-ports'), 8, true)
    const load = (sub: string) => t.AutoModelForCausalLM.from_pretrained(path.join(dir, sub), { local_files_only: true, dtype: 'fp32', device: 'cpu' })
    const peer = await load('llama')
    const peerPorts = await load('llama-ports')
    const runtime = ModelRuntime.for(ortForNode(), source)
    const maxT = Math.max(...Ts)
    const episode = peerEpisode(m, maxT)
    const { adapter } = episode
    const policy = policyFor(m, 'full', {})
    log(`peer: ${modelId} on ${peer.constructor.name} (transformers.js ${version}), ${episode.describe}, T ∈ {${Ts.join(', ')}}, ${reps} reps …`)

    // One step of each side from a given state; both are pure in their inputs. The peer step
    // encodes the observation with the same adapter (the frame encoder for GUI frames), then runs
    // transformers.js' forward with its DynamicCache, then decodes the action from the last
    // position's logits, as stepkv's step does.
    const stepkv = (mem: SessionMemory, seq: number, observation: Record<string, unknown>, returnLogits = false) =>
      runStep(runtime, mem, policy, { seq, observation, ...(returnLogits && { options: { returnLogits } }) }, LIMITS, adapter)
    const peerStep = async (past: Record<string, TjsTensor> | null, pastTokens: number, observation: Record<string, unknown>, model = peer) => {
      const prefix = await adapter.encode(observation)
      const S = prefix.tokens
      const input = prefix.inputsEmbeds
        ? { inputs_embeds: new t.Tensor('float32', prefix.inputsEmbeds, [1, S, m.hiddenSize]) }
        : { input_ids: new t.Tensor('int64', BigInt64Array.from(prefix.inputIds!, BigInt), [1, S]) }
      const attention_mask = new t.Tensor('int64', new BigInt64Array(pastTokens + S).fill(1n), [1, pastTokens + S])
      const out = await model.forward({ ...input, attention_mask, past_key_values: past ? new t.DynamicCache(past) : null })
      const logits = out.logits
      const action = adapter.decode(logits.data.slice(logits.data.length - m.vocabSize))
      const next: Record<string, TjsTensor> = {}
      for (const name in out) if (name.startsWith('present')) next[name.replace('present', 'past_key_values')] = out[name]
      return { logits, action, next, S }
    }

    const boundedPolicy = episode.bounded && policyFor(m, episode.bounded.policy, episode.bounded.params)
    let mem = initialMemory(m, policy)
    let bounded = boundedPolicy && initialMemory(m, boundedPolicy)
    const boundedStep = (memory: SessionMemory, seq: number, observation: Record<string, unknown>) =>
      runStep(runtime, memory, boundedPolicy!, { seq, observation }, LIMITS, adapter)
    let past: Record<string, TjsTensor> | null = null
    let pastTokens = 0
    const points: PeerPoint[] = []
    for (let T = 1; T <= maxT; T++) {
      const observation = episode.observations[T - 1]
      if (Ts.includes(T)) {
        const a: number[] = []
        const b: number[] = []
        const c: number[] = []
        const e: number[] = []
        const parts: Record<'encodeMs' | 'prefillMs' | 'decodeMs' | 'policyMs', number[]> = { encodeMs: [], prefillMs: [], decodeMs: [], policyMs: [] }
        for (let r = 0; r < warmup + reps; r++) {
          // Interleaved so all of them see the same machine load.
          const t0 = performance.now()
          const s = await stepkv(mem, T, observation)
          const t1 = performance.now()
          await peerStep(past, pastTokens, observation)
          const t2 = performance.now()
          await peerStep(past, pastTokens, observation, peerPorts)
          const t3 = performance.now()
          if (bounded) await boundedStep(bounded, T, observation)
          const t4 = performance.now()
          if (r < warmup) continue
          a.push(t1 - t0), b.push(t2 - t1), c.push(t3 - t2)
          if (bounded) e.push(t4 - t3)
          for (const k of Object.keys(parts) as (keyof typeof parts)[]) parts[k].push(s.timings[k])
        }
        const med = (xs: number[]) => Math.round(median(xs) * 100) / 100
        const ref = await stepkv(mem, T, observation, true)
        const got = await peerStep(past, pastTokens, observation)
        const d = diff(ref.logits!.data, got.logits.data)
        const point: PeerPoint = {
          T,
          prefillTokens: got.S,
          pastTokens,
          stepkv: latencySummary(a),
          stepkvParts: { encodeMs: med(parts.encodeMs), prefillMs: med(parts.prefillMs), decodeMs: med(parts.decodeMs), policyMs: med(parts.policyMs) },
          transformersjs: latencySummary(b),
          transformersjsSameGraph: latencySummary(c),
          ...(bounded && { stepkvBounded: { ...latencySummary(e), ...episode.bounded!, memoryTokens: bounded.tokens } }),
          ratioP50: 0,
          ratioP50SameGraph: 0,
          logits: d,
          sameAction: JSON.stringify(ref.action) === JSON.stringify(got.action),
        }
        point.ratioP50 = Math.round((point.transformersjs.p50 / point.stepkv.p50) * 100) / 100
        point.ratioP50SameGraph = Math.round((point.transformersjsSameGraph.p50 / point.stepkv.p50) * 100) / 100
        const same = await peerStep(past, pastTokens, observation, peerPorts)
        const d2 = diff(ref.logits!.data, same.logits.data)
        point.logits = { maxAbs: Math.max(d.maxAbs, d2.maxAbs), rel: Math.max(d.rel, d2.rel) }
        point.sameAction &&= JSON.stringify(same.action) === JSON.stringify(got.action)
        points.push(point)
        log(
          `T=${String(T).padStart(2)} (${got.S} + ${pastTokens} tokens)  stepkv ${point.stepkv.p50} / ${point.stepkv.p95} ms (ORT ${point.stepkvParts.prefillMs}, memory ${point.stepkvParts.policyMs})   transformers.js ${point.transformersjs.p50} / ${point.transformersjs.p95} ms ×${point.ratioP50}, same graph ${point.transformersjsSameGraph.p50} / ${point.transformersjsSameGraph.p95} ms ×${point.ratioP50SameGraph}   logits rel ${point.logits.rel.toExponential(2)}  same action ${point.sameAction}${point.stepkvBounded ? `   stepkv ${point.stepkvBounded.policy} (${point.stepkvBounded.memoryTokens} tokens) ${point.stepkvBounded.p50} / ${point.stepkvBounded.p95} ms` : ''}`,
        )
      }
      const s = await stepkv(mem, T, observation)
      const p = await peerStep(past, pastTokens, observation)
      mem = s.memory
      if (bounded) bounded = (await boundedStep(bounded, T, observation)).memory
      past = p.next
      pastTokens += p.S
    }
    // The caches both carried after the last step.
    let cache = { maxAbs: 0, rel: 0 }
    for (let l = 0; l < m.layers; l++)
      for (const [part, mine] of [['key', mem.layers[l].keys], ['value', mem.layers[l].values]] as const) {
        const theirs = past![`past_key_values.${l}.${part}`].data
        const d = diff(mine.subarray(0, theirs.length), theirs)
        if (mine.length !== theirs.length) throw new Error(`cache length ${mine.length} vs ${theirs.length} at layer ${l} ${part}`)
        cache = { maxAbs: Math.max(cache.maxAbs, d.maxAbs), rel: Math.max(cache.rel, d.rel) }
      }
    await peer.dispose()
    await peerPorts.dispose()
    const maxLogitsRel = Math.max(...points.map((p) => p.logits.rel))
    return {
      model: modelId,
      episode: episode.describe,
      steps: maxT,
      reps,
      warmup,
      versions: { transformersjs: version, peerOrtWeb: t.env.backends.onnx.versions.web, stepkvOrtWeb: ortForNode().env.versions.web ?? '' },
      backend: `onnxruntime-web wasm (CPU), 1 thread, both sides; transformers.js on ${process.env.STEPKV_PEER_ORT === 'main' ? "stepkv's own" : 'its bundled'} onnxruntime-web`,
      points,
      cacheParity: cache,
      maxLogitsRel,
      parityOk: maxLogitsRel < 1e-4 && cache.rel < 1e-4 && points.every((p) => p.sameAction),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
