/**
 * @module The robot client: a control loop at `rateHz` (default 10 Hz, a tick period T = 1000 /
 * rateHz ms) that plays one `RobotEnv` episode against the stepkv API. One request is in flight at
 * a time. Each request sends both camera frames as raw RGB8 `{width, height, data}` (3,840 bytes
 * for top 32×32 + wrist 16×16; cheaper than PNG on both ends, and the encoder reads RGB8 anyway),
 * the proprioception [gx, gy, vx, vy, grip] and the instruction, and gets back an action chunk of
 * K = 4 ticks `{dx, dy, grip}` (chunk[i] is meant for the i-th tick from the request's tick).
 *
 * Time. The simulator is stepped in simulated time: one action = one 0.1 s tick, whatever the
 * wall clock says. The wall clock only decides which actions run, as on a real robot that must
 * send a command every tick. A request leaves at the start of tick k; its deadline is T ms later
 * (inclusive). With the reply's latency L (ms, client side):
 * - L ≤ T: on time; chunk[0] runs for tick k.
 * - L > T: a deadline miss. n = ⌈L / T⌉ − 1 ticks passed without the reply: they run the next
 *   unused actions of the previous chunk (`executeChunk`), and once that chunk is used up, a hold
 *   (zero velocity, grip unchanged; also before the first reply). The late chunk then runs
 *   time-aligned: chunk[n] for tick k + n (its first n actions were for ticks already gone); if
 *   n ≥ K the whole chunk is stale and tick k + n holds too. The next request leaves at tick
 *   k + n + 1.
 * Between requests the loop sleeps until the next tick's start, so it runs at `rateHz` in wall time.
 * Success is still a deterministic function of the actions that ran: only misses change which
 * chunk actions run. `realtime: false` (the demo's `--no-realtime`) turns the deadline handling
 * and the pacing off — every reply's chunk[0] runs, one request per tick, as fast as the server
 * answers — for reproducible numbers; misses are then still counted (L > T) but change nothing.
 */
import {
  RobotEnv,
  executeChunk,
  taskByName,
  type Action,
  type Observation,
} from '../robot/index.ts'
import type { EpisodeResult } from './gui.ts'
import {
  closeSession,
  openSession,
  realClock,
  stepSession,
  type Client,
  type Clock,
  type PolicySpec,
} from './session.ts'

export interface RobotEpisodeOptions {
  /** A served robot model id, e.g. `robot-carried`. */
  model: string
  policy: PolicySpec
  /** A `sim/robot` task name. */
  task: string
  /** Episode seed: the same seed gives the same episode for every configuration. */
  seed: number
  /** Each request in a fresh session (seq 1): the policy sees only its current frames. */
  memoryless?: boolean
  /** Control rate (Hz); the deadline of a request is 1000 / rateHz ms. Default 10. */
  rateHz?: number
  /** Deadline handling and pacing (see the module note). Default true. */
  realtime?: boolean
  /** The simulator to drive (default a new one); tests pass theirs to read privileged state. */
  env?: RobotEnv
  /** Latency and pacing clock; tests pass a virtual one. */
  clock?: Clock
}

export interface RobotEpisodeResult extends EpisodeResult {
  /** Simulated ticks run (0.1 s each). */
  ticks: number
  /** Replies that arrived after their deadline (1000 / rateHz ms). */
  deadlineMisses: number
  /** Ticks that ran without a fresh action: the previous chunk's leftovers or holds. */
  heldTicks: number
}

/** Plays one episode; the session is deleted at the end. @throws Error on a failed API call */
export async function runRobotEpisode(
  client: Client,
  o: RobotEpisodeOptions,
): Promise<RobotEpisodeResult> {
  const env = o.env ?? new RobotEnv()
  const clock = o.clock ?? realClock
  const rateHz = o.rateHz ?? 10
  if (!(rateHz > 0)) throw new RangeError(`rateHz must be > 0, got ${rateHz}`)
  const periodMs = 1000 / rateHz
  const realtime = o.realtime ?? true
  let obs: Observation = env.reset(o.task, o.seed)
  const stepMs: number[] = []
  let memoryBytes = 0
  let deadlineMisses = 0
  let heldTicks = 0
  let grip = 0
  /** The chunk being executed and the index of its next unused action. */
  let plan: { chunk: readonly Action[]; next: number } | undefined
  const nextAction = (): Action => {
    const a =
      plan && plan.next < plan.chunk.length ? plan.chunk[plan.next++] : { dx: 0, dy: 0, grip }
    grip = a.grip >= 0.5 ? 1 : 0
    return a
  }
  const carried = o.memoryless ? undefined : await openSession(client, o.model, o.policy)
  try {
    for (let seq = 1; !env.done; seq++) {
      const observation = {
        images: obs.frames.map((f) => ({ width: f.width, height: f.height, data: f.data })),
        proprio: Array.from(obs.proprio),
        instruction: obs.instruction,
      }
      const id = carried ?? (await openSession(client, o.model, o.policy))
      const start = clock.now()
      const reply = await stepSession<Action[]>(client, id, carried ? seq : 1, observation)
      const latency = clock.now() - start
      stepMs.push(latency)
      memoryBytes = reply.memory.bytes
      if (latency > periodMs) deadlineMisses++
      const left = env.episode.maxTicks - env.world.tick
      const passed = realtime ? Math.min(left, Math.max(0, Math.ceil(latency / periodMs) - 1)) : 0
      if (passed > 0) {
        const stale = Array.from({ length: passed }, nextAction)
        const ran = executeChunk(env, stale, passed)
        heldTicks += ran.length
        obs = ran[ran.length - 1]
      }
      if (!env.done) {
        plan = { chunk: reply.action, next: passed }
        if (passed >= reply.action.length) heldTicks++
        obs = env.step(nextAction())
      }
      if (!carried) await closeSession(client, id)
      if (realtime) await clock.sleep(start + (passed + 1) * periodMs - clock.now())
    }
  } finally {
    if (carried) await closeSession(client, carried)
  }
  const memoryTask = taskByName(o.task).memory
  return {
    task: o.task,
    seed: o.seed,
    success: env.success,
    memoryTask,
    steps: stepMs.length,
    stepMs,
    memoryBytes,
    ticks: env.world.tick,
    deadlineMisses,
    heldTicks,
  }
}
