/**
 * @module The robot policy adapter: camera frames (PNG or raw RGB8, one per camera) +
 * proprioception + the instruction → prefix (visual, proprio, instruction tokens); the action head
 * → an action chunk of K ticks `{dx, dy, grip}` (dx, dy in units of max speed, clamped to [−1, 1]).
 */
import type { ModelManifest } from '../gpu/manifest.ts'
import type { ModelRuntime } from '../gpu/session.ts'
import type { Adapter } from './adapter.ts'
import { encodePrefix, onlyFields } from './encoder.ts'

/** One tick of an action chunk. */
export interface RobotTick {
  dx: number
  dy: number
  grip: number
}

const clamp = (x: number) => Math.max(-1, Math.min(1, x))

/** Decodes the robot head: `move` [K, 2] continuous, optional `grip` [K] logits (close iff ≥ 0). */
export function decodeRobotChunk(logits: Float32Array, m: ModelManifest): RobotTick[] {
  const move = m.actionHead!.segments.find((s) => s.name === 'move')!
  const grip = m.actionHead!.segments.find((s) => s.name === 'grip')
  const K = move.size / 2
  return Array.from({ length: K }, (_, k) => ({
    dx: clamp(logits[move.offset + 2 * k]),
    dy: clamp(logits[move.offset + 2 * k + 1]),
    grip: grip && logits[grip.offset + k] >= 0 ? 1 : 0,
  }))
}

/**
 * The adapter for a robot model. Observation: `{ images: frame[] (manifest camera order), proprio:
 * number[], instruction: string }`; a single-camera model also takes `image`.
 * @throws BadRequestError naming a missing or malformed field
 */
export function robotAdapter(encoder: ModelRuntime, m: ModelManifest): Adapter<RobotTick[]> {
  return {
    kind: 'robot',
    encode: (o) => {
      onlyFields(o, ['images', 'image', 'proprio', 'instruction'], m.id)
      return encodePrefix(encoder, m, Array.isArray(o.images) ? o.images : o.image !== undefined ? [o.image] : [], o.proprio, o.instruction)
    },
    decode: (logits) => decodeRobotChunk(logits, m),
  }
}
