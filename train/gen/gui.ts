/**
 * @module GUI expert episodes as training rows: one row per observation (the screen before an
 * action), labelled with the expert's action in the policy's action-head encoding
 * (train/model.py GUI_SEGMENTS). With probability `randomP` a random but recoverable action is
 * executed instead of the expert's (the row still carries the expert's label): state coverage for
 * behaviour cloning, DAgger-style.
 */
import {
  DONE,
  GRID_COLS,
  GRID_ROWS,
  GuiEnv,
  SCROLL_DOWN,
  SCROLL_UP,
  SCREEN_HEIGHT,
  SCREEN_WIDTH,
  TASKS,
  TYPE,
  type Action,
  encodeAction,
  expertAction,
} from '../../sim/gui/index.ts'
import { NpyColumn } from './npy.ts'

/** Per-row target columns: type, click_x, click_y, digit0..3, scroll; −1 = not supervised. */
export const GUI_TARGET_COLUMNS = ['type', 'click_x', 'click_y', 'digit0', 'digit1', 'digit2', 'digit3', 'scroll']
/** Action types of the `type` head. */
export const GUI_TYPES = ['click', 'type', 'scroll', 'done']

export const GUI_TASKS = TASKS.map((t) => ({ name: t.name, memory: t.memory }))

/** The expert action as the 8 target columns. */
export function guiTarget(action: Action): number[] {
  const { classId, digits } = encodeAction(action)
  const row = [-1, -1, -1, -1, -1, -1, -1, -1]
  if (classId < GRID_COLS * GRID_ROWS) {
    row[0] = 0
    row[1] = classId % GRID_COLS
    row[2] = Math.floor(classId / GRID_COLS)
  } else if (classId === TYPE) {
    row[0] = 1
    digits.forEach((d, i) => (row[3 + i] = d))
  } else if (classId === SCROLL_UP || classId === SCROLL_DOWN) {
    row[0] = 2
    row[7] = classId === SCROLL_UP ? 0 : 1
  } else if (classId === DONE) row[0] = 3
  return row
}

/** The columns of a GUI shard. */
export function guiColumns() {
  return {
    frames: new NpyColumn('|u1', [SCREEN_HEIGHT, SCREEN_WIDTH, 3]),
    // glyph class per 8×8 cell (sim/gui/raster.ts Frame.glyphs): the auxiliary reading target
    glyphs: new NpyColumn('|u1', [GRID_ROWS, GRID_COLS]),
    targets: new NpyColumn('<i2', [GUI_TARGET_COLUMNS.length]),
    memory: new NpyColumn('|u1', []),
    random: new NpyColumn('|u1', []),
  }
}

function randomAction(rand: () => number): Action {
  const u = rand()
  const int = (n: number) => Math.floor(rand() * n)
  if (u < 0.6) return { type: 'click', x: int(GRID_COLS) * 8 + 4, y: int(GRID_ROWS) * 8 + 4 }
  if (u < 0.8) return { type: 'scroll', dy: rand() < 0.5 ? -1 : 1 }
  return { type: 'type', text: String(int(10000)).padStart(4, '0') }
}

/** Whether the expert still solves the episode after `history` then `action` (replayed). */
function expertRecovers(task: string, seed: number, history: readonly Action[], action: Action): boolean {
  const env = new GuiEnv()
  env.reset(task, seed)
  for (const a of [...history, action]) if (env.step(a).done) return false
  for (;;) {
    const r = env.step(expertAction(env))
    if (r.done) return r.success
  }
}

/**
 * A random action the episode recovers from, or undefined: it must not end the episode (the
 * env's reaction is `invalid` — nothing happens — or `stay` — e.g. a wrong code typed, a list
 * scrolled), and the expert must still solve the episode from there within the step limit
 * (checked by replaying the episode). Clicks on wrong buttons, `done` and anything that runs the
 * episode past its step limit are never executed.
 */
function recoverableRandom(env: GuiEnv, task: string, seed: number, history: readonly Action[], rand: () => number) {
  for (let tries = 0; tries < 8; tries++) {
    const a = randomAction(rand)
    const kind = env.stage.react(a, env.ui).kind
    if (kind !== 'invalid' && kind !== 'stay') continue
    if (expertRecovers(task, seed, history, a)) return a
  }
  return undefined
}

export interface EpisodeRow {
  firstRow: number
  rows: number
  task: number
  success: number
  randomActions: number
}

/** Runs one episode, appending its rows to `cols`. */
export function guiEpisode(
  cols: ReturnType<typeof guiColumns>,
  taskIndex: number,
  seed: number,
  randomP: number,
  rand: () => number,
): EpisodeRow & { instruction: string } {
  const task = GUI_TASKS[taskIndex].name
  const env = new GuiEnv()
  let obs = env.reset(task, seed)
  const history: Action[] = []
  const firstRow = cols.frames.rows
  let randomActions = 0
  for (;;) {
    const expert = expertAction(env)
    cols.frames.push(obs.frame.data)
    cols.glyphs.push(obs.frame.glyphs)
    cols.targets.push(guiTarget(expert))
    cols.memory.push([obs.memoryDependent ? 1 : 0])
    let action = expert
    const alt = rand() < randomP ? recoverableRandom(env, task, seed, history, rand) : undefined
    if (alt) {
      action = alt
      randomActions++
    }
    cols.random.push([alt ? 1 : 0])
    history.push(action)
    const r = env.step(action)
    obs = r
    if (r.done) {
      const rows = cols.frames.rows - firstRow
      return { firstRow, rows, task: taskIndex, success: r.success ? 1 : 0, randomActions, instruction: env.episode.instruction }
    }
  }
}
