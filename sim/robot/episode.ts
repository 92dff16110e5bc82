/**
 * @module What a task is: a seeded factory of episodes. An episode owns a world and the
 * task's script (vanishing markers, sliding objects), goal test, memory flag and expert rule.
 */
import type { Action } from './action.ts'
import { stepWorld, type World } from './world.ts'

/** Control ticks in one episode at most (2.4 s at 10 Hz). */
export const MAX_EPISODE_TICKS = 24

/** One seeded episode. Every method reads state only from its `world` argument (clones work). */
export interface Episode {
  readonly task: string
  /** The initial world (tick 0, script applied). */
  readonly world: World
  /** The episode ends after this many actions (≤ `MAX_EPISODE_TICKS`). */
  readonly maxTicks: number
  /** Success needs the goal met in each of the last `dwellTicks` states. */
  readonly dwellTicks: number
  /** First tick whose frames no longer show the hidden information; null for memoryless tasks. */
  readonly hiddenFromTick: number | null
  /**
   * Delay period: before this tick the gripper is held by its brake and every command is ignored
   * (the gripper stays put and keeps its grip), as in a delayed-response task: cue, hold, go.
   * 0: none.
   */
  readonly holdUntilTick: number
  /** Set the scripted parts of the world for `world.tick` (run after each physics tick). */
  script(world: World): void
  /** Whether the goal is met in this state. */
  satisfied(world: World): boolean
  /** Whether the correct action now depends on information no longer visible. */
  memoryDependent(world: World): boolean
  /**
   * The scripted expert's action for `world.tick`, using only what the cameras showed up to
   * `knownTick` (≤ world.tick; smaller inside a chunk's look-ahead) plus privileged positions of
   * things it saw.
   */
  expert(world: World, knownTick: number): Action
}

/** A task: constant instruction, memory flag, seeded episodes. */
export interface Task {
  readonly name: string
  readonly instruction: string
  /** True when success needs information that disappears from view. */
  readonly memory: boolean
  /** Frames at most between the hidden information vanishing and the episode's end; 0 if none. */
  readonly gapTicks: number
  /**
   * A fresh episode. `seed` draws the layout; `hiddenSeed` draws only the hidden information, so
   * two episodes with one seed and different hidden seeds differ only in what gets hidden.
   */
  create(seed: number, hiddenSeed: number): Episode
}

/**
 * One tick of an episode (mutates `world`): physics, then the task's script. During the delay
 * period (`world.tick < holdUntilTick`) the command is replaced by "stay, keep the grip".
 */
export function advance(episode: Episode, world: World, action: Action): void {
  const braked = world.tick < episode.holdUntilTick
  stepWorld(world, braked ? { dx: 0, dy: 0, grip: world.gripper.grip } : action)
  episode.script(world)
}
