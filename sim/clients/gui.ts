/**
 * @module The GUI agent client: plays one `GuiEnv` episode against the stepkv API. Each step sends
 * the screenshot (PNG bytes as a msgpack bin) and the instruction, executes the returned action in
 * the simulator, and stops when the episode ends (solved, failed, or the 12-step limit).
 */
import { GuiEnv, getTask, type Action } from '../gui/index.ts'
import {
  closeSession,
  openSession,
  realClock,
  stepSession,
  type Client,
  type Clock,
  type PolicySpec,
} from './session.ts'

export interface GuiEpisodeOptions {
  /** A served GUI model id, e.g. `gui-carried`. */
  model: string
  policy: PolicySpec
  /** A `sim/gui` task name. */
  task: string
  /** Episode seed (uint32): the same seed gives the same episode for every configuration. */
  seed: number
  /**
   * Every step runs in a fresh session (seq 1), so the policy sees only its current screenshot and
   * nothing carries over: the no-memory baseline (and the leak check: a memory task solved this way
   * would mean the answer is visible on the current screen). Creating and deleting those sessions
   * is not part of the step latency.
   */
  memoryless?: boolean
  /** The simulator to drive (default a new one); tests pass theirs to read privileged state. */
  env?: GuiEnv
  clock?: Clock
}

/** What one episode measured. */
export interface EpisodeResult {
  task: string
  seed: number
  success: boolean
  /** The task needs memory (its answer is shown only on an earlier screen). */
  memoryTask: boolean
  /** Step calls made. */
  steps: number
  /** Round-trip latency of each step call (ms), client side. */
  stepMs: number[]
  /** `memory.bytes` of the last reply: the session's serialized memory (bytes). */
  memoryBytes: number
}

/** Plays one episode; the session is deleted at the end. @throws Error on a failed API call */
export async function runGuiEpisode(client: Client, o: GuiEpisodeOptions): Promise<EpisodeResult> {
  const env = o.env ?? new GuiEnv()
  const clock = o.clock ?? realClock
  let obs = env.reset(o.task, o.seed)
  const stepMs: number[] = []
  let memoryBytes = 0
  const carried = o.memoryless ? undefined : await openSession(client, o.model, o.policy)
  try {
    for (let seq = 1; ; seq++) {
      const observation = { image: obs.png(), instruction: obs.instruction }
      const id = carried ?? (await openSession(client, o.model, o.policy))
      const start = clock.now()
      const reply = await stepSession<Action>(client, id, carried ? seq : 1, observation)
      stepMs.push(clock.now() - start)
      if (!carried) await closeSession(client, id)
      memoryBytes = reply.memory.bytes
      const result = env.step(reply.action)
      if (result.done) {
        const memoryTask = getTask(o.task).memory
        return {
          task: o.task,
          seed: o.seed,
          success: result.success,
          memoryTask,
          steps: seq,
          stepMs,
          memoryBytes,
        }
      }
      obs = result
    }
  } finally {
    if (carried) await closeSession(client, carried)
  }
}
