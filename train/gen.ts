/**
 * @module Behaviour-cloning data from the simulators' scripted experts, as .npy files plus a JSON
 * index (train/README.md "Dataset"). Bundled by train/bundle.sh into train/dist/gen.mjs.
 *
 *   node train/dist/gen.mjs --domain gui|robot --episodes N --out DIR [--workers W] [--seed S]
 *        [--random-p 0.15] [--memory-weight 2] [--task-weight click-button=6,…]
 *
 * With --workers W > 1 the process forks W copies of itself (one shard each, `--shard i`), which
 * write DIR/shard-i/; the parent then writes DIR/index.json. Episode i of the run (over all
 * shards) is task `order[i % order.length]` (memory tasks repeated `--memory-weight` times) with
 * seed hash(seed, i).
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs as nodeParseArgs } from 'node:util'
import { mulberry32, streamSeed } from '../sim/robot/index.ts'
import { GUI_TARGET_COLUMNS, GUI_TASKS, GUI_TYPES, guiColumns, guiEpisode, type EpisodeRow } from './gen/gui.ts'
import { NpyColumn } from './gen/npy.ts'
import { ROBOT_CAMERAS, ROBOT_TASKS, robotColumns, robotEpisode } from './gen/robot.ts'

interface Options {
  domain: 'gui' | 'robot'
  episodes: number
  out: string
  workers: number
  seed: number
  randomP: number
  memoryWeight: number
  /** Extra weight per task name (`--task-weight click-button=6,menu-confirm=2`): the task appears
   * that many times per round (memory tasks' default is `memoryWeight`, others 1). */
  taskWeights: Record<string, number>
  shard?: number
}

/** Thrown for a bad command line: printed as one line (no stack), exit 1. */
class UsageError extends Error {}

/** Largest `--task-weight` / `--memory-weight` (tasks per round-robin round). */
const MAX_WEIGHT = 1000

function parseArgs(argv: string[]): Options {
  let values: Record<string, string | undefined>
  try {
    ;({ values } = nodeParseArgs({
      args: argv,
      strict: true,
      options: Object.fromEntries(['domain', 'episodes', 'out', 'workers', 'seed', 'random-p', 'memory-weight', 'task-weight', 'shard'].map((n) => [n, { type: 'string' as const }])),
    }))
  } catch (e) {
    throw new UsageError(`${(e as Error).message} (usage: --domain gui|robot --episodes N --out DIR [--workers W] [--seed S] [--random-p P] [--memory-weight W] [--task-weight name=W,…])`)
  }
  const need = (name: string) => {
    const v = values[name]
    if (v === undefined || v === '') throw new UsageError(`missing --${name}`)
    return v
  }
  const int = (name: string, fallback: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const raw = values[name] ?? fallback
    if (!/^-?[0-9]+$/.test(raw) || Number(raw) < min || Number(raw) > max)
      throw new UsageError(`--${name} must be an integer in ${min}…${max}, got '${raw}'`)
    return Number(raw)
  }
  const domain = need('domain')
  if (domain !== 'gui' && domain !== 'robot') throw new UsageError(`--domain must be gui or robot, got ${domain}`)
  const rawP = values['random-p'] ?? '0.15'
  const randomP = /^[0-9]*\.?[0-9]+$/.test(rawP) ? Number(rawP) : NaN
  if (!(randomP >= 0 && randomP <= 1)) throw new UsageError(`--random-p must be a number in 0…1, got '${values['random-p']}'`)
  return {
    domain,
    episodes: int('episodes', need('episodes'), 1),
    out: need('out'),
    workers: int('workers', '1', 1, 256),
    seed: int('seed', '1', 0),
    randomP,
    memoryWeight: int('memory-weight', '2', 1, MAX_WEIGHT),
    taskWeights: parseTaskWeights(values['task-weight'] ?? '', domain),
    shard: values.shard === undefined ? undefined : int('shard', '0', 0, 255),
  }
}

/** `name=w,…` → {name: w}; every name a task of the domain, named once, w an integer in 1…1000.
 * @throws UsageError otherwise */
function parseTaskWeights(spec: string, domain: 'gui' | 'robot'): Record<string, number> {
  const names = new Set(tasksOf({ domain }).map((t) => t.name))
  const out: Record<string, number> = {}
  for (const part of spec.split(',')) {
    if (!part && spec === '') continue
    const m = /^([^=]+)=([0-9]+)$/.exec(part)
    if (!m) throw new UsageError(`--task-weight: '${part}' is not name=weight (tasks: ${[...names].join(', ')})`)
    const [, name, w] = m
    if (!names.has(name)) throw new UsageError(`--task-weight: no ${domain} task named '${name}' (tasks: ${[...names].join(', ')})`)
    if (name in out) throw new UsageError(`--task-weight: '${name}' is named twice`)
    if (Number(w) < 1 || Number(w) > MAX_WEIGHT) throw new UsageError(`--task-weight ${name}: weight must be an integer in 1…${MAX_WEIGHT}, got ${w}`)
    out[name] = Number(w)
  }
  return out
}

const tasksOf = (o: Pick<Options, 'domain'>) => (o.domain === 'gui' ? GUI_TASKS : ROBOT_TASKS)

/** Task indices in round-robin order, memory tasks repeated `memoryWeight` times, a task named in
 * `taskWeights` that many times. */
function taskOrder(o: Options): number[] {
  return tasksOf(o).flatMap((t, i) => Array<number>(o.taskWeights[t.name] ?? (t.memory ? o.memoryWeight : 1)).fill(i))
}

/** Generates shard `shard` of `shards` (episodes shard, shard + shards, …) into DIR/shard-k. */
function runShard(o: Options, shard: number, shards: number) {
  const dir = join(o.out, `shard-${shard}`)
  mkdirSync(dir, { recursive: true })
  const order = taskOrder(o)
  const rng = mulberry32(streamSeed(o.seed * 7919 + shard, 'gen:random-actions'))
  const rand = () => rng.next()
  const episodes = new NpyColumn('<i4', [6])
  const instructions: Uint8Array[] = []
  const t0 = performance.now()
  const gui = o.domain === 'gui' ? guiColumns() : undefined
  const robot = o.domain === 'robot' ? robotColumns() : undefined
  let successes = 0
  for (let i = shard; i < o.episodes; i += shards) {
    const seed = streamSeed(o.seed, `episode:${i}`)
    const task = order[i % order.length]
    const e: EpisodeRow & { instruction: string } = gui
      ? guiEpisode(gui, task, seed, o.randomP, rand)
      : robotEpisode(robot!, task, seed, o.randomP, rand)
    const bytes = new TextEncoder().encode(e.instruction)
    instructions.push(bytes)
    episodes.push([e.firstRow, e.rows, e.task, e.success, e.randomActions, bytes.length])
    successes += e.success
  }
  const maxBytes = Math.max(1, ...instructions.map((b) => b.length))
  const instr = new NpyColumn('|u1', [maxBytes])
  for (const b of instructions) {
    const row = new Uint8Array(maxBytes)
    row.set(b)
    instr.push(row)
  }
  const files: Record<string, { file: string; dtype: string; shape: number[] }> = {}
  const write = (name: string, col: NpyColumn) => {
    const file = `${name}.npy`
    col.write(join(dir, file))
    files[name] = { file, dtype: col.dtype, shape: col.shape }
  }
  write('episodes', episodes)
  write('instructions', instr)
  if (gui) {
    write('frames', gui.frames)
    write('glyphs', gui.glyphs)
    write('targets', gui.targets)
    write('memory', gui.memory)
    write('random', gui.random)
  } else {
    for (const [cam, col] of Object.entries(robot!.frames)) write(`frames.${cam}`, col)
    write('proprio', robot!.proprio)
    write('targets', robot!.targets)
    write('memory', robot!.memory)
    write('random', robot!.random)
  }
  const rows = episodes.rows ? files.memory.shape[0] : 0
  const summary = {
    dir: `shard-${shard}`,
    episodes: episodes.rows,
    rows,
    expertSuccesses: successes,
    seconds: (performance.now() - t0) / 1000,
    files,
  }
  writeFileSync(join(dir, 'shard.json'), JSON.stringify(summary, null, 2))
  return summary
}

function indexHeader(o: Options) {
  const common = {
    format: 'stepkv-bc-v1',
    domain: o.domain,
    seed: o.seed,
    episodesRequested: o.episodes,
    randomP: o.randomP,
    memoryWeight: o.memoryWeight,
    taskWeights: o.taskWeights,
    tasks: tasksOf(o),
    episodeColumns: ['firstRow', 'rows', 'task', 'success', 'randomActions', 'instructionBytes'],
  }
  if (o.domain === 'gui')
    return { ...common, targetColumns: GUI_TARGET_COLUMNS, actionTypes: GUI_TYPES, gridCols: 16, gridRows: 12, cameras: [{ name: 'screen', height: 96, width: 128 }], proprioSize: 0 }
  return { ...common, targetColumns: ['dx', 'dy', 'grip'], chunkTicks: 4, cameras: ROBOT_CAMERAS, proprioSize: 5 }
}

async function main() {
  const o = parseArgs(process.argv.slice(2))
  mkdirSync(o.out, { recursive: true })
  if (o.shard !== undefined) {
    runShard(o, o.shard, o.workers)
    return
  }
  const t0 = performance.now()
  let shards: ReturnType<typeof runShard>[]
  if (o.workers <= 1) shards = [runShard(o, 0, 1)]
  else {
    const args = process.argv.slice(2)
    await Promise.all(
      Array.from({ length: o.workers }, (_, k) =>
        new Promise<void>((resolve, reject) => {
          const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...args, '--shard', String(k)], { stdio: 'inherit' })
          child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`shard ${k} exited with ${code}`))))
        }),
      ),
    )
    shards = Array.from({ length: o.workers }, (_, k) => JSON.parse(readFileSync(join(o.out, `shard-${k}`, 'shard.json'), 'utf8')))
  }
  const index = { ...indexHeader(o), shards }
  writeFileSync(join(o.out, 'index.json'), JSON.stringify(index, null, 2))
  const episodes = shards.reduce((a, s) => a + s.episodes, 0)
  const rows = shards.reduce((a, s) => a + s.rows, 0)
  const ok = shards.reduce((a, s) => a + s.expertSuccesses, 0)
  const seconds = (performance.now() - t0) / 1000
  console.log(`gen ${o.domain}: ${episodes} episodes, ${rows} frames, expert success ${ok}/${episodes}, ${seconds.toFixed(1)} s (${o.workers} workers) -> ${o.out}`)
}

main().catch((e) => {
  console.error(e instanceof UsageError ? `gen: ${e.message}` : e)
  process.exit(1)
})
