/**
 * @module Real GUI simulator frames for the performance benches: the scripted expert's episodes
 * (`sim/gui`), played one after another over the six tasks, so a long agent session sees
 * screenshots (PNG 128×96) and instructions exactly as the GUI client sends them. Deterministic
 * per seed; pure (runs in Node and workerd).
 */
import { TASKS, rolloutExpert } from '../sim/gui/index.ts'

/** One step's GUI observation, as `POST /v1/sessions/:id/steps` takes it. */
export interface GuiObservation {
  /** PNG bytes, 128×96 RGB8. */
  image: Uint8Array
  instruction: string
}

/**
 * The first `count` observations of a session that plays expert episodes back to back (tasks in
 * `TASKS` order, episode seeds `seed`, `seed + 1`, …).
 * @param count frames wanted (≥ 1)
 * @param seed first episode seed (uint32)
 * @returns `count` observations in session order
 * @throws RangeError for a count below 1
 */
export function guiSessionFrames(count: number, seed = 1): GuiObservation[] {
  if (!(Number.isInteger(count) && count >= 1)) throw new RangeError(`frame count must be a positive integer, got ${count}`)
  const out: GuiObservation[] = []
  for (let episode = 0; out.length < count; episode++) {
    const task = TASKS[episode % TASKS.length]
    const rollout = rolloutExpert(task.name, seed + episode)
    for (const step of rollout.steps) {
      if (out.length === count) break
      out.push({ image: step.observation.png(), instruction: step.observation.instruction })
    }
  }
  return out
}

/** Prefix tokens of a GUI frame: the encoder's visual tokens plus the instruction's UTF-8 bytes. */
export function guiFrameTokens(frame: GuiObservation, visualTokens: number): number {
  return visualTokens + new TextEncoder().encode(frame.instruction).length
}
