/**
 * @module A deterministic 2-D manipulation simulator for training and evaluating small robot
 * policies from pixels: a unit-square workspace, a velocity-controlled gripper, coloured objects
 * and an occluder, 32×32 top and 16×16 wrist RGB8 cameras, memory and memoryless tasks, and a
 * scripted expert. Pure TypeScript with plain typed arrays: runs in Node, workerd and a bundle.
 */
export {
  ACTION_SIZE,
  CHUNK_TICKS,
  IDLE,
  chunkFromArray,
  chunkToArray,
  clampAction,
} from './action.ts'
export type { Action, ActionChunk, ClampedAction } from './action.ts'
export { PROPRIO_SIZE, RobotEnv, executeChunk, proprio } from './env.ts'
export type { Observation, ResetOptions, RobotEnvOptions, StepResult } from './env.ts'
export { MAX_EPISODE_TICKS, advance } from './episode.ts'
export type { Episode, Task } from './episode.ts'
export { expertChunk, seek } from './expert.ts'
export { COLORS } from './palette.ts'
export {
  DEFAULT_CAMERAS,
  TOP_CAMERA,
  WRIST_CAMERA,
  png,
  render,
  renderAll,
  upscale,
} from './render.ts'
export type { Camera, RGB8 } from './render.ts'
export { mulberry32, stream, streamSeed } from './rng.ts'
export type { Rng } from './rng.ts'
export { TASKS, TASK_NAMES, taskByName } from './tasks.ts'
export {
  GRASP_RADIUS_M,
  MAX_SPEED_MPS,
  MAX_STEP_M,
  TICK_S,
  cloneWorld,
  markerVisible,
  objectVisible,
  stepWorld,
} from './world.ts'
export type { Gripper, Marker, Rect, Rgb, Vec2, World, WorldObject } from './world.ts'
