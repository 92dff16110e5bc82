/**
 * @module `GuiEnv`: one episode at a time, driven by the agent's actions.
 *
 * Each observation is the rendered screen (128×96 px RGB8), the constant instruction, the step
 * count and whether the right action now depends on an earlier screen. Wrong actions never
 * throw:
 * - invalid (`invalid: true`, screen unchanged, the step still counts): a click on nothing
 *   clickable or off screen, `type` without a field or with text other than 4 digits, `scroll`
 *   without a list or past its ends, a malformed action;
 * - failing (`done: true, success: false`): a click on a wrong button/menu item/list row,
 *   Submit with the wrong code, `done` before the final "Done" screen;
 * - the episode also ends, unsolved, after `MAX_STEPS` (12) actions.
 * It is solved by `done` on the "Done" screen that follows the task's last right action.
 */
import type { Action } from './actions.ts'
import { framePng } from './png.ts'
import type { Frame } from './raster.ts'
import { renderScreen } from './render.ts'
import type { Episode, Stage, StageUi } from './stage.ts'
import { getTask } from './tasks.ts'

/** Actions per episode before it ends unsolved. */
export const MAX_STEPS = 12

export interface Observation {
  /** The screen: 128×96 px, data Uint8Array [96, 128, 3]. */
  readonly frame: Frame
  /** The frame as PNG bytes (encoded on first call). */
  png(): Uint8Array
  /** The task's goal, the same text at every step. */
  readonly instruction: string
  /** Actions taken so far (0 after reset). */
  readonly step: number
  /** True when the right action now depends on information shown only on an earlier screen. */
  readonly memoryDependent: boolean
}

/** Why an episode ended. */
export type Outcome = 'success' | 'fail' | 'step-limit'

export interface StepResult extends Observation {
  readonly done: boolean
  readonly success: boolean
  /** The action did nothing (see the module note); the step still counts. */
  readonly invalid: boolean
  /** Set once the episode is over. */
  readonly outcome?: Outcome
}

export class GuiEnv {
  #episode: Episode | undefined
  #stage = 0
  #ui: StageUi = { typed: '', scroll: 0 }
  #step = 0
  #outcome: Outcome | undefined

  /**
   * Start an episode of task `taskName` for `seed` (uint32); `secret` overrides a memory task's
   * remembered value (tests).
   * @throws RangeError for an unknown task
   */
  reset(taskName: string, seed: number, secret?: number): Observation {
    this.#episode = getTask(taskName).build(seed, secret)
    this.#stage = 0
    this.#ui = this.#episode.stages[0].initialUi
    this.#step = 0
    this.#outcome = undefined
    return this.#observe()
  }

  /**
   * Apply one action.
   * @throws Error before `reset` or after the episode ended
   */
  step(action: Action): StepResult {
    if (this.#outcome) throw new Error('episode is over; call reset()')
    const stage = this.stage
    const reaction = wellFormed(action)
      ? stage.react(action, this.#ui)
      : { kind: 'invalid' as const }
    this.#step++
    if (reaction.kind === 'next') {
      this.#stage++
      this.#ui = this.stage.initialUi
    } else if (reaction.kind === 'stay') this.#ui = reaction.ui
    else if (reaction.kind === 'fail' || reaction.kind === 'success') this.#outcome = reaction.kind
    if (!this.#outcome && this.#step >= MAX_STEPS) this.#outcome = 'step-limit'
    const outcome = this.#outcome
    return {
      ...this.#observe(),
      done: !!outcome,
      success: outcome === 'success',
      invalid: reaction.kind === 'invalid',
      outcome,
    }
  }

  /** The current episode (privileged: stages know the secret). @throws Error before reset */
  get episode(): Episode {
    if (!this.#episode) throw new Error('call reset() first')
    return this.#episode
  }

  /** The current stage (privileged). */
  get stage(): Stage {
    return this.episode.stages[this.#stage]
  }

  /** The current stage's UI state (typed text, list scroll). */
  get ui(): StageUi {
    return this.#ui
  }

  /** True once the episode has ended. */
  get done(): boolean {
    return !!this.#outcome
  }

  #observe(): Observation {
    const frame = renderScreen(this.stage.screen(this.#ui))
    let png: Uint8Array | undefined
    return {
      frame,
      png: () => (png ??= framePng(frame)),
      instruction: this.episode.instruction,
      step: this.#step,
      memoryDependent: !this.#outcome && this.stage.memoryDependent(this.#ui),
    }
  }
}

/** True for an action of a known type with fields of the right types. */
function wellFormed(a: Action): boolean {
  if (a === null || typeof a !== 'object') return false
  switch (a.type) {
    case 'click':
      return Number.isFinite(a.x) && Number.isFinite(a.y)
    case 'type':
      return typeof a.text === 'string'
    case 'scroll':
      return Number.isFinite(a.dy)
    case 'done':
      return true
    default:
      return false
  }
}
