/**
 * @module `npm run demo`: starts `wrangler dev` (local, storage in a temp dir), plays the GUI and
 * robot task suites against it over HTTP with the trained models, and prints one row per
 * configuration: success (Wilson 95 % interval), success on memory tasks, step calls, step latency
 * p50/p95 (ms, client side), serialized memory per session (bytes) and, for the robot, replies
 * that missed their control deadline.
 *
 * Configurations (every one plays the same episodes: each task × seeds 1000…1000+N−1):
 * - GUI: gui-carried + full, gui-carried + guikv (≈ 25 % of an 8-frame prompt), gui-tempo +
 *   tempofit (8 frames), memoryless gui-carried (each step in a fresh session).
 * - robot (10 Hz control loop, see sim/clients/robot.ts): robot-carried + full, robot-carried +
 *   window (the last 2 frames), robot-tempo + tempofit (8 frames), memoryless robot-carried.
 *
 * Options: `--episodes N` per task (default 5: ≈ 3 min on 2 cores), `--suite gui|robot|all`,
 * `--json FILE`, `--url URL` (a running server instead of starting one), `--rate HZ` (robot
 * control rate, default 10), `--no-realtime` (robot: no deadline handling or pacing, for
 * reproducible numbers).
 */
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { api } from './client.ts'
import { runGuiEpisode, type EpisodeResult } from './clients/gui.ts'
import { formatTable, formatTasks, toJson } from './clients/report.ts'
import { runRobotEpisode } from './clients/robot.ts'
import type { Client } from './clients/session.ts'
import {
  guiConfigs,
  meanInstructionBytes,
  robotConfigs,
  runConfig,
  tokensPerFrame,
  type PrefixManifest,
  type RunConfig,
  type RunSummary,
  type Suite,
} from './clients/suites.ts'
import { startWrangler, type Wrangler } from './wrangler.ts'

const USAGE =
  'usage: npm run demo -- [--episodes N] [--suite gui|robot|all] [--json FILE] [--url URL] [--rate HZ] [--no-realtime]'

const bad = (msg: string): never => {
  process.stderr.write(`${msg}\n${USAGE}\n`)
  process.exit(2)
}

function parse() {
  try {
    return parseArgs({
      options: {
        episodes: { type: 'string', default: '5' },
        suite: { type: 'string', default: 'all' },
        json: { type: 'string' },
        url: { type: 'string' },
        rate: { type: 'string', default: '10' },
        'no-realtime': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values
  } catch (e) {
    // unknown option, missing value, stray word: one line, no stack
    return bad((e as Error).message.replace(/\s*\n\s*/g, ' '))
  }
}
const values = parse()
if (values.help) {
  process.stdout.write(`${USAGE}\n`)
  process.exit(0)
}
const episodes = Number(values.episodes)
const rateHz = Number(values.rate)
const realtime = !values['no-realtime']
if (!Number.isInteger(episodes) || episodes < 1 || episodes > 10_000)
  bad('--episodes must be an integer in 1..10000')
if (!(rateHz > 0 && rateHz <= 1000)) bad('--rate must be a number in (0, 1000] (Hz)')
if (!['gui', 'robot', 'all'].includes(values.suite!)) bad('--suite must be gui, robot or all')
if (values.json !== undefined) {
  // checked before the run, not after it: a results file the run could not write would be lost
  const file = path.resolve(values.json)
  if (values.json === '' || (existsSync(file) && statSync(file).isDirectory())) bad(`--json needs a file path, got '${values.json}'`)
  try {
    mkdirSync(path.dirname(file), { recursive: true }) // missing folders are created
    accessSync(path.dirname(file), constants.W_OK)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'a part of the path is a file' : (code ?? (e as Error).message)
    bad(`--json ${values.json}: cannot write there (${why})`)
  }
}
const suites: Suite[] = values.suite === 'all' ? ['gui', 'robot'] : [values.suite as Suite]
const seeds = Array.from({ length: episodes }, (_, i) => 1000 + i)

const err = (s: string) => process.stderr.write(s)
const tty = process.stderr.isTTY
const dir = mkdtempSync(path.join(tmpdir(), 'stepkv-demo-'))
let server: Wrangler | undefined

async function cleanup() {
  await server?.kill()
  server = undefined
  rmSync(dir, { recursive: true, force: true })
}
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    err(`\n${signal}: stopping wrangler dev\n`)
    void cleanup().finally(() => process.exit(130))
  })

/** Manifests of the served models, by id. @throws Error naming a model the server lacks */
async function manifests(client: Client, needed: string[]): Promise<Map<string, PrefixManifest>> {
  const r = await client.call('GET', '/v1/models')
  if (r.status !== 200) throw new Error(`GET /v1/models: HTTP ${r.status}`)
  const byId = new Map<string, PrefixManifest>(r.data.models.map((m: PrefixManifest) => [m.id, m]))
  const missing = needed.filter((id) => !byId.has(id))
  if (missing.length)
    throw new Error(
      `the server does not serve ${missing.join(', ')} (it serves ${[...byId.keys()].join(', ')})`,
    )
  return byId
}

function configsOf(suite: Suite, byId: Map<string, PrefixManifest>): RunConfig[] {
  const model = suite === 'gui' ? 'gui-carried' : 'robot-carried'
  const frame = tokensPerFrame(byId.get(model)!, meanInstructionBytes(suite, seeds))
  return suite === 'gui' ? guiConfigs(frame) : robotConfigs(frame)
}

/**
 * One throw-away episode per model before measuring, so the isolate's ORT session creation
 * (~1 s per model on first use) is not counted in the step latencies.
 */
async function warmUp(client: Client, configs: RunConfig[]) {
  const seen = new Set<string>()
  for (const c of configs) {
    if (seen.has(c.model)) continue
    seen.add(c.model)
    const o = { model: c.model, policy: { name: 'full' }, seed: 1, memoryless: true }
    if (c.suite === 'gui') await runGuiEpisode(client, { ...o, task: 'click-button' })
    else await runRobotEpisode(client, { ...o, task: 'reach-red', realtime: false })
  }
}

function progress(c: RunConfig, done: readonly EpisodeResult[], total: number, final = false) {
  const ok = done.filter((r) => r.success).length
  const label = `${c.suite} ${c.label}`.padEnd(20)
  const rate = ((100 * ok) / Math.max(1, done.length)).toFixed(0)
  const count = `${String(done.length).padStart(4)}/${total} episodes`
  const text = `  ${label} ${count}  success ${ok}/${done.length} (${rate} %)`
  if (tty) err(`\r${text}${final ? '\n' : ''}`)
  else if (!final && done.length % seeds.length === 0)
    err(`${text}  (${done[done.length - 1].task} done)\n`)
}

async function main() {
  const t0 = performance.now()
  let base = values.url
  if (!base) {
    err(`starting wrangler dev (local, storage in ${dir}) …\n`)
    server = await startWrangler(dir)
    base = server.url
    err(`wrangler dev up at ${base} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`)
  }
  const client = api(fetch, base)
  const needed = suites.flatMap((s) =>
    s === 'gui' ? ['gui-carried', 'gui-tempo'] : ['robot-carried', 'robot-tempo'],
  )
  const byId = await manifests(client, needed).catch((e) => {
    const cause = (e as Error & { cause?: Error }).cause?.message
    throw values.url && (e as Error).message === 'fetch failed'
      ? new Error(`cannot reach ${base} (${cause ?? 'fetch failed'}): is the server running? (npm run dev, or leave out --url)`)
      : e
  })
  const configs = suites.flatMap((s) => configsOf(s, byId))
  err(`warming up ${needed.join(', ')} …\n`)
  await warmUp(client, configs)
  const loop = `${rateHz} Hz${realtime ? '' : ', no realtime'}`
  const range = `seeds ${seeds[0]}…${seeds[seeds.length - 1]}`
  const robot = suites.includes('robot') ? `; robot loop ${loop}` : ''
  err(
    `running ${configs.length} configurations × ${episodes} episodes per task (${range})${robot}\n`,
  )
  const runs: RunSummary[] = []
  for (const c of configs) {
    let last: readonly EpisodeResult[] = []
    const run = await runConfig(client, c, {
      seeds,
      rateHz,
      realtime,
      onEpisode: (done, total) => {
        last = done
        progress(c, done, total)
      },
    })
    progress(c, last, run.episodes, true)
    runs.push(run)
  }
  const wallS = (performance.now() - t0) / 1000
  const out = (s: string) => process.stdout.write(`${s}\n`)
  for (const s of suites) {
    const rows = runs.filter((r) => r.suite === s)
    out(`\n${s === 'gui' ? 'GUI' : `robot (${loop})`}: ${episodes} episode${episodes === 1 ? '' : 's'} per task`)
    out(formatTable(rows))
    out(`\nper task:\n${formatTasks(rows)}`)
  }
  out(`\nwall time ${wallS.toFixed(0)} s`)
  if (values.json) {
    const meta = {
      episodesPerTask: episodes,
      seeds,
      rateHz,
      realtime,
      server: values.url ? base : 'wrangler dev (local)',
      date: new Date().toISOString(),
      wallS: Math.round(wallS),
    }
    writeFileSync(values.json, `${JSON.stringify(toJson(runs, meta), null, 2)}\n`)
    out(`wrote ${values.json}`)
  }
}

main()
  .catch((e) => {
    err(`\ndemo failed: ${e instanceof Error ? e.message : String(e)}\n`)
    if (server) err(`wrangler dev output (tail):\n${server.log().slice(-4000)}\n`)
    process.exitCode = 1
  })
  .finally(cleanup)
