/**
 * @module Episodes as a chain of stages. A stage is one screen with its rules: what it shows for
 * its small UI state (typed text, list scroll), how it reacts to an action, and what the scripted
 * expert does there (privileged: it may know the episode's secret).
 */
import type { Action } from './actions.ts'
import type { Screen } from './widgets.ts'

/** The UI state a stage may change without leaving the screen. */
export interface StageUi {
  /** Content of the screen's text field ('' when empty). */
  readonly typed: string
  /** Index of the list's first visible item (rows). */
  readonly scroll: number
}

export const EMPTY_UI: StageUi = { typed: '', scroll: 0 }

/**
 * What an action did:
 * - `next`: the stage is complete; the episode moves to the next stage.
 * - `stay`: the stage stays with a new UI state (typed or scrolled).
 * - `invalid`: the action hit nothing or does not apply here; nothing changes.
 * - `fail`: a wrong choice (wrong button, wrong code, `done` too early); the episode ends.
 * - `success`: `done` on the final screen; the episode ends, solved.
 */
export type Reaction =
  | { readonly kind: 'next' }
  | { readonly kind: 'stay'; readonly ui: StageUi }
  | { readonly kind: 'invalid' }
  | { readonly kind: 'fail' }
  | { readonly kind: 'success' }

export interface Stage {
  /** A short name for debugging and tests, e.g. 'show-code', 'menu', 'enter-code'. */
  readonly name: string
  readonly initialUi: StageUi
  /** The screen drawn for a UI state. */
  screen(ui: StageUi): Screen
  /** The effect of an action in a UI state. */
  react(action: Action, ui: StageUi): Reaction
  /** The scripted expert's action in a UI state. */
  expert(ui: StageUi): Action
  /** True when the expert's action depends on information shown only on an earlier screen. */
  memoryDependent(ui: StageUi): boolean
}

/** One generated episode: a constant instruction and the stages, the last one a "Done" screen. */
export interface Episode {
  readonly task: string
  readonly seed: number
  readonly instruction: string
  readonly stages: readonly Stage[]
}
