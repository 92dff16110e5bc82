/**
 * @module The robot task list: two memory tasks (the answer disappears from view; gap ≤ 8 frames)
 * and two memoryless ones. Each task has a constant instruction, seeded episodes of ≤ 24 ticks at
 * 10 Hz, a success check and a per-tick memory flag (see `Episode`).
 */
import type { Task } from './episode.ts'
import { hiddenTarget } from './tasks/hidden-target.ts'
import { movedOccluded } from './tasks/moved-occluded.ts'
import { pickPlace } from './tasks/pick-place.ts'
import { reachRed } from './tasks/reach-red.ts'

/** Every task, memory tasks first. */
export const TASKS: readonly Task[] = [hiddenTarget, movedOccluded, reachRed, pickPlace]

/** Task names, in `TASKS` order. */
export const TASK_NAMES: readonly string[] = TASKS.map((t) => t.name)

/**
 * The task called `name`.
 * @throws RangeError naming the known tasks
 */
export function taskByName(name: string): Task {
  const task = TASKS.find((t) => t.name === name)
  if (!task) throw new RangeError(`unknown robot task '${name}' (known: ${TASK_NAMES.join(', ')})`)
  return task
}
