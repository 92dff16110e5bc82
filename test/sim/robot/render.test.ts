import { decode } from 'fast-png'
import { describe, expect, it } from 'vitest'
import {
  COLORS,
  RobotEnv,
  TOP_CAMERA,
  WRIST_CAMERA,
  png,
  render,
  upscale,
  type RGB8,
  type Rgb,
} from '../../../sim/robot/index.ts'
import { expertPolicy, runEpisode } from './helpers.ts'

const count = (f: RGB8, c: Rgb) => {
  let n = 0
  for (let i = 0; i < f.data.length; i += 3)
    if (f.data[i] === c[0] && f.data[i + 1] === c[1] && f.data[i + 2] === c[2]) n++
  return n
}
const pixel = (f: RGB8, row: number, col: number) =>
  Array.from(f.data.subarray((row * f.width + col) * 3, (row * f.width + col) * 3 + 3))

describe('robot cameras', () => {
  it('default frames: top 32×32 RGB8, wrist 16×16 RGB8', () => {
    const obs = new RobotEnv().reset('reach-red', 0)
    expect(obs.frames.map((f) => [f.width, f.height, f.data.length])).toEqual([
      [32, 32, 32 * 32 * 3],
      [16, 16, 16 * 16 * 3],
    ])
    expect(obs.frames[0].data).toBeInstanceOf(Uint8Array)
  })

  it('the occluder hides the slid disc; lifted, it shows again', () => {
    const env = new RobotEnv()
    const run = runEpisode(env, 'moved-occluded', 3, expertPolicy)
    const hide = env.episode.hiddenFromTick!
    const blue = run.observations.map((o) => count(o.frames[0], COLORS.blue))
    expect(blue.slice(0, hide).every((n) => n > 0)).toBe(true)
    const grasped = run.observations.findIndex((o, t) => t >= hide && !o.memoryDependent)
    expect(blue.slice(hide, grasped).every((n) => n === 0)).toBe(true)
    expect(blue[grasped]).toBeGreaterThan(0)
  })

  it('the hidden-target marker shows only during the cue', () => {
    const env = new RobotEnv()
    const run = runEpisode(env, 'hidden-target', 8, expertPolicy)
    const cue = env.episode.hiddenFromTick!
    const magenta = run.observations.map((o) => count(o.frames[0], COLORS.magenta))
    expect(magenta.map((n) => n > 0)).toEqual(run.observations.map((_, t) => t < cue))
  })

  it('wrist camera: gripper at the centre, wall beyond the workspace', () => {
    const env = new RobotEnv()
    env.reset('reach-red', 2)
    Object.assign(env.world.gripper, { x: 0.05, y: 0.5 })
    const wrist = render(env.world, WRIST_CAMERA)
    expect(pixel(wrist, 7, 7)).toEqual([...COLORS.gripperOpen])
    expect(pixel(wrist, 8, 8)).toEqual([...COLORS.gripperOpen])
    expect(pixel(wrist, 8, 0)).toEqual([...COLORS.wall]) // x = 0.05 − 0.25 + 0.016 < 0
  })

  it('png() round-trips through fast-png; upscale multiplies both sides', () => {
    const frame = new RobotEnv().reset('pick-place', 5).frames[0]
    const decoded = decode(png(frame))
    expect([decoded.width, decoded.height, decoded.channels, decoded.depth]).toEqual([32, 32, 3, 8])
    expect(Array.from(decoded.data)).toEqual(Array.from(frame.data))
    const big = upscale(frame, 3)
    expect([big.width, big.height]).toEqual([96, 96])
    expect(pixel(big, 95, 95)).toEqual(pixel(frame, 31, 31))
    expect(decode(png(frame, 3)).width).toBe(96)
  })

  it('one camera can be configured alone', () => {
    const obs = new RobotEnv({ cameras: [TOP_CAMERA] }).reset('hidden-target', 1)
    expect(obs.frames).toHaveLength(1)
  })
})
