/**
 * @module Public API of the GUI task simulator: a deterministic 128×96 px screen world whose
 * screenshots train and evaluate small GUI-agent policies. Pure TypeScript over typed arrays:
 * runs in Node 22, workerd and an esbuild bundle.
 */
export {
  ACTION_CLASSES,
  DONE,
  SCROLL_DOWN,
  SCROLL_UP,
  TYPE,
  TYPE_DIGITS,
  type Action,
  type EncodedAction,
  clickCell,
  decodeAction,
  encodeAction,
  isTypeText,
} from './actions.ts'
export { GuiEnv, MAX_STEPS, type Observation, type Outcome, type StepResult } from './env.ts'
export { type ExpertRollout, type ExpertStep, expertAction, rolloutExpert } from './expert.ts'
export {
  CELL_PX,
  GRID_CELLS,
  GRID_COLS,
  GRID_ROWS,
  SCREEN_HEIGHT,
  SCREEN_WIDTH,
  type CellRect,
  cellCenter,
  pointToCell,
  targetCell,
} from './grid.ts'
export { framePng } from './png.ts'
export { type Frame, type Rgb, frameHash } from './raster.ts'
export { renderScreen } from './render.ts'
export type { Episode, Stage, StageUi } from './stage.ts'
export { TASKS, type TaskSpec, getTask } from './tasks.ts'
export { type Hit, type Screen, type Widget, hitTest } from './widgets.ts'
