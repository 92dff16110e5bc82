/**
 * @module Colours of the robot scenes: flat, saturated and far apart, so a tiny conv encoder can
 * tell every kind of thing apart from single pixels of a 32×32 frame.
 */
import type { Rgb } from './world.ts'

/** Scene colours (RGB 0–255). */
export const COLORS = {
  table: [205, 190, 155],
  /** Outside the workspace (only the wrist camera sees it). */
  wall: [40, 40, 48],
  occluder: [128, 128, 128],
  /** Gripper open: white; closed: black. */
  gripperOpen: [255, 255, 255],
  gripperClosed: [16, 16, 16],
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 90, 230],
  yellow: [235, 200, 30],
  cyan: [40, 200, 210],
  orange: [240, 130, 30],
  /** Hidden-target marker. */
  magenta: [220, 40, 220],
  /** Goal pad (pick-place). */
  pad: [160, 230, 160],
} as const satisfies Record<string, Rgb>

/** Colours for distractor objects, minus those a task gives a meaning. */
export function distractorColors(...reserved: Rgb[]): Rgb[] {
  const all: Rgb[] = [
    COLORS.red,
    COLORS.green,
    COLORS.blue,
    COLORS.yellow,
    COLORS.cyan,
    COLORS.orange,
  ]
  return all.filter((c) => !reserved.includes(c))
}
