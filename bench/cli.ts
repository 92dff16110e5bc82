/**
 * @module `npm run bench -- <suite> [--json FILE] [--episodes N] [--steps T]`.
 * Suites: `fidelity` (policy decisions vs the full cache), `robot-fidelity`, `gui-fidelity` (`--only
 * LABEL[,LABEL]`: the rows whose label contains one of them, e.g. `--only 'kivi4 r0'`; `--set
 * policy.param=N[,…]`: a parameter for every row of that policy, e.g. `--set guikv.subspaceRank=8`),
 * `transport` (WebSocket vs HTTP per-step latency against wrangler dev), `history` (step latency
 * and memory vs history length; `--quick`, `--no-workerd`, `--no-http`), `codec` (envelope
 * throughput; `--no-workerd`), `load` (concurrent sessions against wrangler dev, bench/load.ts), `peer` (transformers.js'
 * `past_key_values` path on the same model and GUI frames, bench/peer/; `--steps N` repetitions, `--model tiny-gqa` for
 * the token-id decoder on text), `report` (README tables from the last history and codec results)
 * and `fidelity-charts` (the robot and GUI fidelity charts redrawn from their results files). Results go to `bench/results/<suite>.json` (or `--json FILE`) with
 * the machine, versions, model and commit, plus SVG charts beside them.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { writeSvg } from './chart.ts'
import { writeFidelityChart, type FidelityChartRow } from './fidelity-chart.ts'
import { runCodec } from './codec.ts'
import { runHistory } from './history.ts'
import { writeHistoryCharts } from './history-chart.ts'
import { bytesTable, codecTable, latencyTable, targetsTable } from './report.ts'
import { defaultConfigs, fidelity } from './fidelity.ts'
import { runMeta } from './meta.ts'
import { robotConfigs, robotFidelity } from './robot-fidelity.ts'
import { guiConfigs, guiFidelity } from './gui-fidelity.ts'
import { onlyConfigs, withOverrides } from './sweep.ts'
import { GuiEnv, TASKS as GUI_TASKS } from '../sim/gui/index.ts'
import { RobotEnv } from '../sim/robot/index.ts'
import { nodeModelSource } from '../gpu/node-models.ts'
import { useNativeCrc32 } from '../memory/crc32-node.ts'

// `load` (bench/load.ts) reads its own options (--sessions, --chaos, --url, …).
if (process.argv[2] === 'load') {
  await (await import('./load.ts')).loadCli(process.argv.slice(3))
  process.exit()
}

const { values, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        json: { type: 'string' },
        episodes: { type: 'string', default: '20' },
        steps: { type: 'string' },
        model: { type: 'string' },
        quick: { type: 'boolean', default: false },
        'no-workerd': { type: 'boolean', default: false },
        'no-http': { type: 'boolean', default: false },
        only: { type: 'string' },
        set: { type: 'string' },
      },
    })
  } catch (e) {
    // an unknown option or a missing value: one line, not a stack trace
    process.stderr.write(`bench: ${(e as Error).message.split('\n')[0]}\n`)
    process.exit(2)
  }
})()
if (values.json === '') {
  process.stderr.write('bench: --json needs a file name\n')
  process.exit(2)
}
const suite = positionals[0]
const RESULTS = path.resolve(path.dirname(new URL(import.meta.url).pathname), 'results')
const log = (s: string) => process.stdout.write(s + '\n')

async function main() {
  if (values.only !== undefined && suite !== 'robot-fidelity' && suite !== 'gui-fidelity')
    throw new Error(`--only applies to robot-fidelity and gui-fidelity, not to '${suite ?? ''}'`)
  // a subset must not overwrite the committed full sweep in bench/results/
  if ((values.only !== undefined || values.set !== undefined) && !values.json)
    throw new Error('--only / --set change the sweep: give --json FILE for it (the default results file holds the default sweep)')
  if (values.set !== undefined && suite !== 'robot-fidelity' && suite !== 'gui-fidelity')
    throw new Error(`--set applies to robot-fidelity and gui-fidelity, not to '${suite ?? ''}'`)
  if (values.model !== undefined && suite !== 'peer') throw new Error(`--model applies to peer, not to '${suite ?? ''}'`)
  if (suite === 'robot-fidelity') return robotSuite()
  if (suite === 'gui-fidelity') return guiSuite()
  if (suite === 'transport') return transportSuite()
  if (suite === 'history') return historySuite()
  if (suite === 'codec') return codecSuite()
  if (suite === 'report') return reportSuite()
  if (suite === 'fidelity-charts') return fidelityChartsSuite()
  if (suite === 'peer') return peerSuite()
  if (suite !== 'fidelity') throw new Error(`unknown suite '${suite ?? ''}' (known: fidelity, robot-fidelity, gui-fidelity, fidelity-charts, transport, history, codec, peer, report)`)
  const episodes = Number(values.episodes)
  const steps = Number(values.steps ?? '24')
  if (!(Number.isInteger(episodes) && episodes > 0 && Number.isInteger(steps) && steps > 1))
    throw new Error('--episodes and --steps must be positive integers (steps ≥ 2)')
  log(`fidelity: ${episodes} text episodes × ${steps} steps, tiny-gqa (untrained) …`)
  const rows = await fidelity(defaultConfigs(), episodes, steps, log)
  const file = values.json ?? path.join(RESULTS, 'fidelity.json')
  mkdirSync(path.dirname(file), { recursive: true })
  writeFileSync(file, JSON.stringify({ suite, meta: runMeta(), model: 'tiny-gqa', episodes, steps, rows }, null, 2) + '\n')
  const chart = path.join(path.dirname(file), 'fidelity.svg')
  await writeSvg(
    {
      title: 'Agreement with the full cache vs serialized memory',
      data: { values: rows.filter((r) => r.policy !== 'none').map((r) => ({ ...r, agreementPct: 100 * r.agreement, kib: r.bytesPerStep / 1024, storage: r.bits === 32 ? 'float32' : `kivi ${r.bits}-bit` })) },
      mark: { type: 'point', filled: true, size: 80 },
      encoding: {
        x: { field: 'kib', type: 'quantitative', title: 'memory per step (KiB)', scale: { type: 'log' } },
        y: { field: 'agreementPct', type: 'quantitative', title: 'greedy action agreement (%)', scale: { zero: false } },
        color: { field: 'policy', type: 'nominal' },
        shape: { field: 'storage', type: 'nominal' },
        tooltip: [{ field: 'label' }],
      },
      width: 520,
      height: 320,
    },
    chart,
  )
  log(`wrote ${file} and ${chart}`)
}

/** `transport`: WebSocket vs HTTP per-step latency against `wrangler dev` (cli/latency.ts), both models. */
async function transportSuite() {
  const steps = Number(values.steps ?? '200')
  if (!(Number.isInteger(steps) && steps > 0)) throw new Error('--steps must be a positive integer')
  const { startWrangler } = await import('../sim/wrangler.ts')
  const { measureLatency, formatLatency } = await import('../cli/latency.ts')
  const { mkdtempSync, rmSync } = await import('node:fs')
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stepkv-transport-'))
  log('transport: starting wrangler dev …')
  const server = await startWrangler(dir)
  const runs = []
  try {
    for (const model of ['robot-carried', 'tiny-gqa'] as const) {
      log(`transport: ${steps} steps per transport on ${model} …`)
      const r = await measureLatency({ url: server.url, apiKey: 'dev-key-stepkv-0000000000000000', steps, warmup: 10, model })
      log(formatLatency(r).trimEnd())
      runs.push(r)
    }
  } finally {
    await server.kill()
    rmSync(dir, { recursive: true, force: true })
  }
  const file = values.json ?? path.join(RESULTS, 'transport.json')
  writeJson(file, { suite: 'transport', meta: runMeta(), steps, runs })
  log(`wrote ${file}`)
}

async function guiSuite() {
  const episodes = Number(values.episodes)
  if (!(Number.isInteger(episodes) && episodes > 0)) throw new Error('--episodes must be a positive integer')
  const instr = GUI_TASKS.map((t) => new TextEncoder().encode(new GuiEnv().reset(t.name, 1).instruction).length)
  const frameTokens = Math.round(48 + instr.reduce((a, b) => a + b, 0) / instr.length)
  log(`gui-fidelity: ${episodes} episodes per task (${GUI_TASKS.length} tasks), gui-carried / gui-tempo, ${frameTokens} prompt tokens per frame (mean) …`)
  const rows = await guiFidelity(onlyConfigs(withOverrides(guiConfigs(frameTokens), values.set), values.only), episodes, log)
  const file = values.json ?? path.join(RESULTS, 'gui-fidelity.json')
  writeJson(file, { suite: 'gui-fidelity', meta: runMeta(), episodes, frameTokens, rows })
  const chart = chartBeside(file)
  await writeFidelityChart(FIDELITY_TITLES['gui-fidelity'], rows, chart)
  log(`wrote ${file} and ${chart}`)
}

async function robotSuite() {
  const episodes = Number(values.episodes)
  if (!(Number.isInteger(episodes) && episodes > 0)) throw new Error('--episodes must be a positive integer')
  const o = new RobotEnv().reset('hidden-target', 1)
  const frameTokens = 16 + 16 + 1 + new TextEncoder().encode(o.instruction).length
  log(`robot-fidelity: ${episodes} episodes per task, robot-carried / robot-tempo, ${frameTokens} prompt tokens per frame …`)
  const rows = await robotFidelity(onlyConfigs(withOverrides(robotConfigs(frameTokens), values.set), values.only), episodes, log)
  const file = values.json ?? path.join(RESULTS, 'robot-fidelity.json')
  mkdirSync(path.dirname(file), { recursive: true })
  writeFileSync(file, JSON.stringify({ suite: 'robot-fidelity', meta: runMeta(), episodes, frameTokens, rows }, null, 2) + '\n')
  const chart = chartBeside(file)
  await writeFidelityChart(FIDELITY_TITLES['robot-fidelity'], rows, chart)
  log(`wrote ${file} and ${chart}`)
}

function writeJson(file: string, value: unknown) {
  mkdirSync(path.dirname(file), { recursive: true })
  writeFileSync(file, JSON.stringify(value, null, 2) + '\n')
}

const targetLine = (t: { id: string; ratio: number | null; comparison: string; limit: number; met: boolean; detail?: string }) =>
  `${t.met ? 'met    ' : 'NOT met'} ${t.id}: ${t.ratio ?? 'unmeasured'} (target ${t.comparison} ${Math.round(t.limit * 1000) / 1000})${t.detail ? `  [${t.detail}]` : ''}`

/** The models a result used, with their sha256 (a retrained model changes the numbers). */
const modelShas = (ids: string[]) => ids.map((id) => ({ id, sha256: nodeModelSource(id).manifest.sha256 }))

async function historySuite() {
  const started = performance.now()
  const loadBefore = os.loadavg()
  const quick = values.quick
  log(`history: T ∈ {1, 2, 4, 8, 16, 32, 64}, gui-carried / gui-tempo on sim/gui frames${quick ? ' (quick)' : ''} …`)
  const result = await runHistory({ quick, workerd: !values['no-workerd'], http: !values['no-http'], log })
  const file = values.json ?? path.join(RESULTS, 'history.json')
  const meta = { ...runMeta(), loadAverage: { before: loadBefore, after: os.loadavg() }, seconds: Math.round((performance.now() - started) / 1000) }
  writeJson(file, { suite: 'history', meta, models: modelShas(['gui-carried', 'gui-tempo']), quick, ...result })
  const dir = path.dirname(file)
  const charts = await writeHistoryCharts(result.records, path.join(dir, 'history-latency.svg'), path.join(dir, 'history-bytes.svg'))
  for (const t of result.targets) log(targetLine(t))
  log(`wrote ${file}, ${charts.join(', ')} (${meta.seconds} s)`)
}

/** The models the peer suite runs: the GUI decoder on the history frames, the token-id decoder on text. */
const PEER_MODELS = ['gui-carried', 'tiny-gqa']

/** `peer`: transformers.js' own KV handling vs stepkv's step on the same model (bench/peer/peer.ts). */
async function peerSuite() {
  const { runPeer } = await import('./peer/peer.ts')
  const reps = Number(values.steps ?? '100')
  if (!(Number.isInteger(reps) && reps > 0)) throw new Error('--steps must be a positive integer')
  const model = values.model ?? 'gui-carried'
  if (!PEER_MODELS.includes(model)) throw new Error(`--model: peer runs ${PEER_MODELS.join(' (GUI frames) or ')} (text), not '${model}'`)
  const result = await runPeer({ reps, log, model })
  const file = values.json ?? path.join(RESULTS, model === 'gui-carried' ? 'peer.json' : `peer-${model}.json`)
  writeJson(file, { suite: 'peer', meta: { ...runMeta(), loadAverage: os.loadavg() }, models: modelShas([result.model]), ...result })
  log(`logits parity: max rel ${result.maxLogitsRel.toExponential(2)}, cache ${result.cacheParity.rel.toExponential(2)} (${result.parityOk ? 'ok' : 'FAILED'})`)
  log(`wrote ${file}`)
  if (!result.parityOk) process.exitCode = 1
}

/** Prints the README tables from the history and codec results. */
/** Chart titles of the trained-model fidelity suites. */
const FIDELITY_TITLES = { 'robot-fidelity': 'Robot suite (robot-carried; TempoFit: robot-tempo)', 'gui-fidelity': 'GUI suite (gui-carried; TempoFit: gui-tempo)' } as const

/** The SVG file beside a results file: `x.json` → `x.svg`. */
const chartBeside = (file: string) => file.replace(/\.json$/, '') + '.svg'

/** `fidelity-charts`: redraws the trained-model fidelity charts from their results files (default
 * the committed `robot-fidelity.json` and `gui-fidelity.json`; `--json FILE` for one other run). */
async function fidelityChartsSuite() {
  const files = values.json ? [values.json] : [path.join(RESULTS, 'robot-fidelity.json'), path.join(RESULTS, 'gui-fidelity.json')]
  for (const file of files) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      throw new Error(`no results file '${file}'`)
    }
    let run: { suite?: unknown; rows?: unknown }
    try {
      run = JSON.parse(text) ?? {}
    } catch {
      throw new Error(`${file} is not a JSON results file`)
    }
    if (typeof run !== 'object' || typeof run.suite !== 'string' || !Object.hasOwn(FIDELITY_TITLES, run.suite))
      throw new Error(`${file} is not a robot-fidelity or gui-fidelity results file (suite: ${JSON.stringify(run?.suite ?? null)})`)
    if (!Array.isArray(run.rows)) throw new Error(`${file} has no rows`)
    const chart = chartBeside(file)
    await writeFidelityChart(FIDELITY_TITLES[run.suite as keyof typeof FIDELITY_TITLES], run.rows as FidelityChartRow[], chart)
    log(`wrote ${chart}`)
  }
}

function reportSuite() {
  const history = JSON.parse(readFileSync(path.join(RESULTS, 'history.json'), 'utf8'))
  const Ts = [1, 2, 4, 8, 16, 32, 64]
  for (const runtime of ['node', 'workerd', 'http']) log(`\n### step p50 / p95 (ms), ${runtime}\n\n${latencyTable(history.records, runtime, Ts, history.failures)}`)
  log(`\n### memory (KiB)\n\n${bytesTable(history.records, Ts)}`)
  let targets = history.targets
  try {
    const codec = JSON.parse(readFileSync(path.join(RESULTS, 'codec.json'), 'utf8'))
    log(`\n### codec\n\n${codecTable(codec.rows)}`)
    targets = [...targets, ...codec.targets]
  } catch {
    log('\n(no codec.json)')
  }
  log(`\n### targets\n\n${targetsTable(targets)}`)
}

async function codecSuite() {
  const result = await runCodec(values.quick ? 150 : 400, !values['no-workerd'], log)
  const file = values.json ?? path.join(RESULTS, 'codec.json')
  writeJson(file, { suite: 'codec', meta: runMeta(), models: modelShas(['gui-carried']), ...result })
  for (const t of result.targets) log(targetLine(t))
  log(`wrote ${file}`)
}

const crc = useNativeCrc32()
if (crc.reason) log(`crc32: ${crc.implementation} (@node-rs/crc32 did not load: ${crc.reason})`)
main().catch((e) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.message : String(e)}\n`)
  process.exitCode = 1
})
