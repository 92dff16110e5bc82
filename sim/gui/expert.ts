/**
 * @module The scripted expert: the right action from the privileged state (the current stage and
 * its UI state, which know the episode's secret). It solves every episode; behaviour cloning
 * learns from its rollouts.
 */
import type { Action } from './actions.ts'
import { GuiEnv, type Observation, type StepResult } from './env.ts'

/**
 * The expert's action for the env's current state.
 * @throws Error before reset or after the episode ended
 */
export function expertAction(env: GuiEnv): Action {
  if (env.done) throw new Error('episode is over')
  return env.stage.expert(env.ui)
}

/** One recorded step: the observation the agent saw and the expert's action on it. */
export interface ExpertStep {
  readonly observation: Observation
  readonly action: Action
}

/** A finished expert episode. */
export interface ExpertRollout {
  readonly task: string
  readonly seed: number
  readonly instruction: string
  readonly steps: readonly ExpertStep[]
  /** The result of the last action (done, with its outcome). */
  readonly final: StepResult
  readonly success: boolean
}

/** Run the expert on one episode of `taskName` for `seed` (and an optional `secret`) to its end. */
export function rolloutExpert(taskName: string, seed: number, secret?: number): ExpertRollout {
  const env = new GuiEnv()
  let observation: Observation = env.reset(taskName, seed, secret)
  const steps: ExpertStep[] = []
  for (;;) {
    const action = expertAction(env)
    steps.push({ observation, action })
    const result = env.step(action)
    observation = result
    if (result.done) {
      const { instruction } = env.episode
      return { task: taskName, seed, instruction, steps, final: result, success: result.success }
    }
  }
}
