/**
 * @module The task suite: six task types, two of which need memory. Each builds an episode
 * (instruction + stages) from a seed; the same seed always gives the same episode.
 *
 * | task           | memory | expert steps | what is remembered / done                       |
 * | -------------- | ------ | ------------ | ----------------------------------------------- |
 * | code-entry     | yes    | 6–11         | a 4-digit code, typed 3–8 steps after it showed |
 * | setting-recall | yes    | 5–10         | a toggle's on/off, asked 3–8 steps later        |
 * | click-button   | no     | 2            | click the button the instruction names          |
 * | menu-confirm   | no     | 3            | open the named menu command, confirm the dialog |
 * | scroll-find    | no     | 2–10         | scroll a 12-name list to the named one, click   |
 * | code-copy      | no     | 3            | type the code shown on the same form, Submit    |
 */
import type { Episode } from './stage.ts'
import { clickButton } from './tasks/click-button.ts'
import { codeCopy } from './tasks/code-copy.ts'
import { codeEntry } from './tasks/code-entry.ts'
import { MAX_GAP, MIN_GAP } from './tasks/distractors.ts'
import { menuConfirm } from './tasks/menu-confirm.ts'
import { scrollFind } from './tasks/scroll-find.ts'
import { settingRecall } from './tasks/setting-recall.ts'

export interface TaskSpec {
  readonly name: string
  /** True when some step's right action depends on a screen shown earlier. */
  readonly memory: boolean
  /** Memory tasks: steps (= frames) from showing the secret (step 0) to using it, [min, max]. */
  readonly gap?: readonly [min: number, max: number]
  /**
   * Build the episode for a seed (uint32). `secret` overrides the value drawn from the seed's
   * '<task>:secret' stream (code 0–9999, or setting state 0/1), keeping every other choice: two
   * episodes that differ only in `secret` share the instruction and all later screens.
   */
  readonly build: (seed: number, secret?: number) => Episode
}

const MEMORY_GAP = [MIN_GAP, MAX_GAP] as const

export const TASKS: readonly TaskSpec[] = [
  { name: 'code-entry', memory: true, gap: MEMORY_GAP, build: codeEntry },
  { name: 'setting-recall', memory: true, gap: MEMORY_GAP, build: settingRecall },
  { name: 'click-button', memory: false, build: clickButton },
  { name: 'menu-confirm', memory: false, build: menuConfirm },
  { name: 'scroll-find', memory: false, build: scrollFind },
  { name: 'code-copy', memory: false, build: codeCopy },
]

/**
 * The task with this name.
 * @throws RangeError naming the unknown task and the known ones
 */
export function getTask(name: string): TaskSpec {
  const task = TASKS.find((t) => t.name === name)
  if (!task)
    throw new RangeError(`unknown task '${name}'; known: ${TASKS.map((t) => t.name).join(', ')}`)
  return task
}
