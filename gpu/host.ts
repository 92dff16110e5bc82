/**
 * @module `npm run gpu-host`: the GPU host on Node (`@hono/node-server`). Picks WebGPU when
 * `navigator.gpu` gives an adapter (Dawn via the `webgpu` package), else wasm; holds sessions in
 * memory with a durable copy on local disk. Also the entry of the bundled build
 * (`gpu/dist/host.mjs`, `bash gpu/build.sh`) that runs on a GPU machine without npm.
 *
 * Options (flags, or the env var in brackets):
 *   --port N [GPU_HOST_PORT]          default 8788
 *   --host ADDR                        default 127.0.0.1; another address needs a secret
 *   --backend auto|webgpu|wasm [GPU_HOST_BACKEND]   default auto
 *   --durable-dir DIR [GPU_HOST_DURABLE_DIR]         default .wrangler/gpu-host
 *   --durable-every K [GPU_HOST_DURABLE_EVERY]       default 1 (a durable copy after every step)
 *   --max-hot N [GPU_HOST_MAX_HOT]                   default 64 sessions held in memory
 *   --no-resident                      keep K/V on the host between steps (round trip each step)
 *                                      (--resident, the default, is accepted)
 *   --fixed-capacity N [GPU_HOST_FIXED_CAPACITY]     resident K/V as N rows per head, empty ones
 *                                      masked (shapes stay put while a bounded memory fills); 0 = off
 *   --capture [GPU_HOST_CAPTURE=1|0]   with --fixed-capacity: the float-table graph, replayed by WebGPU
 *                                      graph capture (gpu/static-step.ts)
 *   --no-capture-tempo [GPU_HOST_CAPTURE_TEMPO=0|1]   with --capture, TempoFit banks are captured
 *                                      too (fixed bank slots); this keeps them dynamic
 *                                      (--capture-tempo, the default, is accepted)
 *   --no-float16-resident [GPU_HOST_FLOAT16_RESIDENT=0|1]   float16 sessions round-trip; by
 *                                      default they stay on the device (rows rounded to float16 there)
 *                                      where the start-up rounding check passes
 *                                      (--float16-resident, the default, is accepted)
 *   --models DIR                       default: the repo's models/
 *   secret: GPU_HOST_SECRET (env only, ≥ 16 characters), sent by the Worker as `x-stepkv-host-secret`
 */
import { existsSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { serve } from '@hono/node-server'
import { NotFoundError } from '../memory/errors.ts'
import { FileStore, MemoryStore, type DurableStore } from './durable.ts'
import { hostApp } from './host-app.ts'
import { HostSessions } from './host-sessions.ts'
import { nodeEncoderSource, nodeModelSource } from './node-models.ts'
import type { ModelSource } from './session.ts'
import { selectBackend, type Backend } from './webgpu.ts'
import { useNativeCrc32 } from '../memory/crc32-node.ts'

/** Settings of `startHost`. */
export interface HostConfig {
  port: number
  hostname?: string
  backend?: 'auto' | Backend
  /** Directory of the durable copies; `null` = in memory (tests). */
  durableDir?: string | null
  durableEvery?: number
  maxHot?: number
  resident?: boolean
  /** Fixed-capacity resident layout, tokens per head (0 = off; `HostOptions.fixedCapacity`). */
  fixedCapacity?: number
  /** Float-table graph with WebGPU graph capture (`HostOptions.capture`; needs `fixedCapacity`). */
  capture?: boolean
  /** TempoFit banks captured too (`HostOptions.captureTempo`; default: as `capture`). */
  captureTempo?: boolean
  /** float16 sessions kept on the device (`HostOptions.float16Resident`; default: as `resident`). */
  float16Resident?: boolean
  secret?: string
  modelsDir?: string
}

/** The repo's `models/` seen from this file (source tree) or from `gpu/dist/` (bundle). */
export function defaultModelsDir(): string {
  const here = path.dirname(new URL(import.meta.url).pathname)
  for (const dir of [path.resolve(here, '../models'), path.resolve(here, '../../models'), path.resolve('models')])
    if (existsSync(path.join(dir, 'tiny-gqa', 'manifest.json'))) return dir
  throw new Error(`no models/ directory found near ${here} or in ${process.cwd()}: pass --models DIR`)
}

/** Model sources of `dir` by id. @throws NotFoundError (`unknown_model`) for an id not in `dir` */
export function modelsFrom(dir: string): (id: string) => { decoder: ModelSource; encoder?: ModelSource } {
  const cache = new Map<string, { decoder: ModelSource; encoder?: ModelSource }>()
  return (id) => {
    let m = cache.get(id)
    if (m) return m
    if (!/^[a-z0-9][a-z0-9-]{0,63}$/.test(id) || !existsSync(path.join(dir, id, 'manifest.json')))
      throw new NotFoundError(`unknown model '${id}'`, {}, 'unknown_model')
    const decoder = nodeModelSource(id, dir)
    m = { decoder, ...(decoder.manifest.encoder && { encoder: nodeEncoderSource(id, dir) }) }
    cache.set(id, m)
    return m
  }
}

/** Shortest shared secret the host accepts (characters): it guards every session's memory. */
export const MIN_SECRET_LENGTH = 16

/** A bad command line, environment value or host setting: printed as one line (no stack), exit 2. */
export class UsageError extends Error {}

/**
 * Starts a host.
 * @returns its URL, the sessions (tests) and `close()` (flushes durable copies, stops listening)
 * @throws UsageError when a non-loopback `hostname` comes without a secret; Error when WebGPU
 *   was required and is unavailable; the listen error (`code` EADDRINUSE for a port in use)
 */
export async function startHost(config: HostConfig) {
  const hostname = config.hostname ?? '127.0.0.1'
  if (!config.secret && !['127.0.0.1', 'localhost', '::1'].includes(hostname))
    throw new UsageError(`a GPU host on ${hostname} needs GPU_HOST_SECRET (only loopback may run without one)`)
  if (config.secret !== undefined && config.secret.length < MIN_SECRET_LENGTH)
    throw new UsageError(`GPU_HOST_SECRET must be at least ${MIN_SECRET_LENGTH} characters (got ${config.secret.length})`)
  if (config.modelsDir !== undefined && !readdirSync(config.modelsDir).some((d) => existsSync(path.join(config.modelsDir!, d, 'manifest.json'))))
    throw new UsageError(`--models: no model under '${config.modelsDir}' (each model is a directory with a manifest.json)`)
  const choice = await selectBackend(config.backend ?? 'auto')
  const store: DurableStore = config.durableDir === null ? new MemoryStore() : new FileStore(config.durableDir ?? path.resolve('.wrangler/gpu-host'))
  const sessions = new HostSessions({
    choice,
    store,
    model: modelsFrom(config.modelsDir ?? defaultModelsDir()),
    durableEvery: config.durableEvery ?? 1,
    maxHot: config.maxHot ?? 64,
    resident: config.resident ?? true,
    fixedCapacity: config.fixedCapacity ?? 0,
    capture: config.capture ?? false,
    captureTempo: config.captureTempo,
    float16Resident: config.float16Resident ?? config.resident ?? true,
  })
  await sessions.prepare() // the float16 rounding check, when float16Resident asks for it
  const app = hostApp({ sessions, secret: config.secret, reason: choice.reason })
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: config.port, hostname }, () => resolve(s))
    s.once('error', reject) // e.g. EADDRINUSE
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : config.port
  return {
    url: `http://${hostname}:${port}`,
    sessions,
    backend: choice.backend,
    reason: choice.reason,
    close: async () => {
      await sessions.flushAll()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}


async function main() {
  const crc = useNativeCrc32() // the durable copy is checksummed on every write
  let values: Record<string, string | boolean | undefined>
  try {
    ;({ values } = parseArgs({
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        backend: { type: 'string' },
        'durable-dir': { type: 'string' },
        'durable-every': { type: 'string' },
        'max-hot': { type: 'string' },
        resident: { type: 'boolean' },
        'no-resident': { type: 'boolean' },
        'fixed-capacity': { type: 'string' },
        capture: { type: 'boolean' },
        'capture-tempo': { type: 'boolean' },
        'no-capture-tempo': { type: 'boolean' },
        'float16-resident': { type: 'boolean' },
        'no-float16-resident': { type: 'boolean' },
        models: { type: 'string' },
      },
    }))
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0]
    throw new UsageError(msg.includes('ambiguous') ? `${msg.replace(/\.?\s*To specify.*$/, '')} (no option takes a value starting with '-')` : msg)
  }
  const env = process.env
  /** `--flag` value, else the environment variable, else the default: a decimal integer in min…max. */
  const int = (flag: string, envName: string, dflt: number, min: number, max: number) => {
    const fromFlag = values[flag.slice(2)] as string | undefined
    const v = fromFlag ?? env[envName]
    if (v === undefined) return dflt
    const source = fromFlag !== undefined ? flag : envName
    if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`${source} must be an integer in ${min}…${max}, got '${v}'`)
    return Number(v)
  }
  const backend = ((values.backend as string | undefined) ?? env.GPU_HOST_BACKEND ?? 'auto') as 'auto' | Backend
  if (!['auto', 'webgpu', 'wasm'].includes(backend)) throw new UsageError(`${values.backend !== undefined ? '--backend' : 'GPU_HOST_BACKEND'} must be auto, webgpu or wasm, got '${backend}'`)
  const fixedCapacity = int('--fixed-capacity', 'GPU_HOST_FIXED_CAPACITY', 0, 0, 65_536)
  const captureEnv = env.GPU_HOST_CAPTURE
  if (captureEnv !== undefined && !['0', '1', ''].includes(captureEnv)) throw new UsageError(`GPU_HOST_CAPTURE must be 1 or 0, got '${captureEnv}'`)
  const capture = values.capture === true || captureEnv === '1'
  const captureSource = values.capture ? '--capture' : 'GPU_HOST_CAPTURE=1'
  if (capture && !fixedCapacity) throw new UsageError(`${captureSource} needs --fixed-capacity N (N ≥ 1)`)
  if (capture && values['no-resident']) throw new UsageError(`${captureSource} needs resident K/V (drop --no-resident)`)
  const captureTempoEnv = env.GPU_HOST_CAPTURE_TEMPO
  if (captureTempoEnv !== undefined && !['0', '1', ''].includes(captureTempoEnv)) throw new UsageError(`GPU_HOST_CAPTURE_TEMPO must be 1 or 0, got '${captureTempoEnv}'`)
  if (values['capture-tempo'] && values['no-capture-tempo']) throw new UsageError('--capture-tempo and --no-capture-tempo contradict each other')
  // default: as --capture; the flags win over the variable
  const captureTempo = values['no-capture-tempo'] ? false : values['capture-tempo'] ? true : captureTempoEnv ? captureTempoEnv === '1' : capture
  if (captureTempo && !capture) throw new UsageError(`${values['capture-tempo'] ? '--capture-tempo' : 'GPU_HOST_CAPTURE_TEMPO=1'} needs --capture (or GPU_HOST_CAPTURE=1)`)
  if (values.resident && values['no-resident']) throw new UsageError('--resident and --no-resident contradict each other')
  const halfEnv = env.GPU_HOST_FLOAT16_RESIDENT
  if (halfEnv !== undefined && !['0', '1', ''].includes(halfEnv)) throw new UsageError(`GPU_HOST_FLOAT16_RESIDENT must be 1 or 0, got '${halfEnv}'`)
  if (values['float16-resident'] && values['no-float16-resident']) throw new UsageError('--float16-resident and --no-float16-resident contradict each other')
  // default: on with resident K/V; the flags win over the variable; asked for explicitly, it needs resident K/V
  const halfAsked = values['float16-resident'] === true || (!values['no-float16-resident'] && halfEnv === '1')
  if (halfAsked && values['no-resident']) throw new UsageError(`${values['float16-resident'] ? '--float16-resident' : 'GPU_HOST_FLOAT16_RESIDENT=1'} needs resident K/V (drop --no-resident)`)
  const float16Resident = values['no-float16-resident'] ? false : values['float16-resident'] ? true : halfEnv ? halfEnv === '1' : !values['no-resident']
  const modelsDir = values.models as string | undefined
  if (modelsDir !== undefined && !(existsSync(modelsDir) && statSync(modelsDir).isDirectory()))
    throw new UsageError(`--models: no directory '${modelsDir}'`)
  if (fixedCapacity && values['no-resident']) throw new UsageError(`${values['fixed-capacity'] !== undefined ? '--fixed-capacity' : 'GPU_HOST_FIXED_CAPACITY'} needs resident K/V (drop --no-resident)`)
  const durableDir = (values['durable-dir'] as string | undefined) ?? env.GPU_HOST_DURABLE_DIR
  const durableSource = values['durable-dir'] !== undefined ? '--durable-dir' : 'GPU_HOST_DURABLE_DIR'
  if (durableDir === '') throw new UsageError(`${durableSource} is empty`)
  const hostname = (values.host as string | undefined) ?? '127.0.0.1'
  const port = int('--port', 'GPU_HOST_PORT', 8788, 0, 65_535)
  const host = await startHost({
    port,
    hostname,
    backend,
    durableDir,
    durableEvery: int('--durable-every', 'GPU_HOST_DURABLE_EVERY', 1, 1, 1_000_000),
    maxHot: int('--max-hot', 'GPU_HOST_MAX_HOT', 64, 1, 100_000),
    resident: !values['no-resident'],
    fixedCapacity,
    capture,
    captureTempo,
    float16Resident,
    secret: env.GPU_HOST_SECRET || undefined,
    modelsDir,
  }).catch((e: NodeJS.ErrnoException) => {
    if (e?.code === 'EADDRINUSE') throw new UsageError(`${hostname}:${port} is in use (pick another --port)`)
    if (e?.code === 'EADDRNOTAVAIL' || e?.code === 'ENOTFOUND' || e?.code === 'EAI_AGAIN') throw new UsageError(`--host ${hostname}: no such address on this machine`)
    if (['ENOTDIR', 'EACCES', 'EROFS', 'EEXIST', 'ENOENT', 'EPERM'].includes(e?.code ?? '') && e?.syscall !== 'getaddrinfo')
      throw new UsageError(`${durableSource}: cannot use '${e.path ?? ''}' as a directory (${e.code})`)
    if (/WebGPU requested but unavailable/.test(String(e?.message))) throw new UsageError(String(e.message).split('\n')[0])
    throw e
  })
  console.log(JSON.stringify({ event: 'gpu-host', url: host.url, reason: host.reason, ...host.sessions.settings, crc32: crc.implementation, ...(crc.reason && { crc32Reason: crc.reason }) }))
  const stop = async () => {
    await host.close()
    process.exit(0)
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

const entry = process.argv[1] && path.resolve(process.argv[1])
// Run as a program (`gpu/host.ts`, or the bundle `gpu/dist/host.mjs`), not when imported or bundled into another entry.
if (entry && entry === path.resolve(new URL(import.meta.url).pathname) && /host\.(ts|mjs)$/.test(entry))
  main().catch((e) => {
    if (e instanceof UsageError) {
      console.error(`gpu-host: ${e.message}`)
      process.exit(2)
    }
    console.error(String((e as Error).stack ?? e))
    process.exit(1)
  })
