/**
 * @module Robot expert episodes as training rows: one row per control tick (every camera's frame,
 * proprio, the instruction), labelled with the expert's K-step action chunk (dx, dy, grip per
 * tick). With probability `randomP` the executed action is a random velocity (the expert's grip
 * kept) instead of the chunk's first action, when a look-ahead shows the expert still succeeds
 * from there; the row keeps the expert's label (DAgger-style state coverage).
 */
import {
  ACTION_SIZE,
  CHUNK_TICKS,
  DEFAULT_CAMERAS,
  PROPRIO_SIZE,
  RobotEnv,
  TASKS,
  advance,
  chunkToArray,
  cloneWorld,
  expertChunk,
  type Action,
  type Episode,
  type World,
} from '../../sim/robot/index.ts'
import { NpyColumn } from './npy.ts'
import type { EpisodeRow } from './gui.ts'

export const ROBOT_TASKS = TASKS.map((t) => ({ name: t.name, memory: t.memory }))
export const ROBOT_CAMERAS = DEFAULT_CAMERAS.map((c) => ({ name: c.name, height: c.height, width: c.width }))

/** The columns of a robot shard: one frames column per camera. */
export function robotColumns() {
  const frames: Record<string, NpyColumn> = {}
  for (const c of DEFAULT_CAMERAS) frames[c.name] = new NpyColumn('|u1', [c.height, c.width, 3])
  return {
    frames,
    proprio: new NpyColumn('<f4', [PROPRIO_SIZE]),
    targets: new NpyColumn('<f4', [CHUNK_TICKS, ACTION_SIZE]),
    memory: new NpyColumn('|u1', []),
    random: new NpyColumn('|u1', []),
  }
}

/** Whether the expert, in control from `world` (after `action`), meets the goal at the end. */
function expertRecovers(episode: Episode, live: World, metTicks: number, action: Action): boolean {
  const world = cloneWorld(live)
  let met = metTicks
  const tick = (a: Action) => {
    advance(episode, world, a)
    met = episode.satisfied(world) ? met + 1 : 0
  }
  tick(action)
  while (world.tick < episode.maxTicks) tick(expertChunk(episode, world, 1)[0])
  return met >= episode.dwellTicks
}

/** Runs one episode, appending its rows to `cols`. */
export function robotEpisode(
  cols: ReturnType<typeof robotColumns>,
  taskIndex: number,
  seed: number,
  randomP: number,
  rand: () => number,
): EpisodeRow & { instruction: string } {
  const task = ROBOT_TASKS[taskIndex].name
  const env = new RobotEnv()
  let obs = env.reset(task, seed)
  const episode = env.episode
  let met = episode.satisfied(env.world) ? 1 : 0
  const firstRow = cols.memory.rows
  let randomActions = 0
  let success = false
  while (!env.done) {
    const chunk = expertChunk(episode, env.world)
    obs.frames.forEach((f, i) => cols.frames[env.cameras[i].name].push(f.data))
    cols.proprio.push(obs.proprio)
    cols.targets.push(chunkToArray(chunk))
    cols.memory.push([obs.memoryDependent ? 1 : 0])
    let action: Action = chunk[0]
    let random = 0
    if (rand() < randomP) {
      const angle = rand() * 2 * Math.PI
      const speed = Math.sqrt(rand())
      const alt = { dx: speed * Math.cos(angle), dy: speed * Math.sin(angle), grip: chunk[0].grip }
      if (expertRecovers(episode, env.world, met, alt)) {
        action = alt
        random = 1
        randomActions++
      }
    }
    cols.random.push([random])
    const r = env.step(action)
    met = episode.satisfied(env.world) ? met + 1 : 0
    success = r.success
    obs = r
  }
  return { firstRow, rows: cols.memory.rows - firstRow, task: taskIndex, success: success ? 1 : 0, randomActions, instruction: obs.instruction }
}
