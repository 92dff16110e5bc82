/**
 * @module `npm run bench -- <suite> [--json FILE] [--episodes N] [--steps T]`.
 * Suites: `fidelity` (policy decisions vs the full cache). Results go to `bench/results/<suite>.json`
 * (or `--json FILE`) with the machine, versions, model and commit, plus an SVG chart beside them.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { writeSvg } from './chart.ts'
import { defaultConfigs, fidelity } from './fidelity.ts'
import { runMeta } from './meta.ts'
import { robotConfigs, robotFidelity } from './robot-fidelity.ts'
import { RobotEnv } from '../sim/robot/index.ts'

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    json: { type: 'string' },
    episodes: { type: 'string', default: '20' },
    steps: { type: 'string', default: '24' },
  },
})
const suite = positionals[0]
const RESULTS = path.resolve(path.dirname(new URL(import.meta.url).pathname), 'results')
const log = (s: string) => process.stdout.write(s + '\n')

async function main() {
  if (suite === 'robot-fidelity') return robotSuite()
  if (suite !== 'fidelity') throw new Error(`unknown suite '${suite ?? ''}' (known: fidelity, robot-fidelity)`)
  const episodes = Number(values.episodes)
  const steps = Number(values.steps)
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

async function robotSuite() {
  const episodes = Number(values.episodes)
  if (!(Number.isInteger(episodes) && episodes > 0)) throw new Error('--episodes must be a positive integer')
  const o = new RobotEnv().reset('hidden-target', 1)
  const frameTokens = 16 + 16 + 1 + new TextEncoder().encode(o.instruction).length
  log(`robot-fidelity: ${episodes} episodes per task, robot-carried / robot-tempo, ${frameTokens} prompt tokens per frame …`)
  const rows = await robotFidelity(robotConfigs(frameTokens), episodes, log)
  const file = values.json ?? path.join(RESULTS, 'robot-fidelity.json')
  mkdirSync(path.dirname(file), { recursive: true })
  writeFileSync(file, JSON.stringify({ suite: 'robot-fidelity', meta: runMeta(), episodes, frameTokens, rows }, null, 2) + '\n')
  log(`wrote ${file}`)
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.message : String(e)}\n`)
  process.exitCode = 1
})
