import { describe, expect, it } from 'vitest'
import {
  CHUNK_TICKS,
  PROPRIO_SIZE,
  RobotEnv,
  chunkFromArray,
  chunkToArray,
  executeChunk,
  expertChunk,
} from '../../../sim/robot/index.ts'
import { fingerprint } from './helpers.ts'

describe('RobotEnv API', () => {
  it('reset: tick 0, proprio [gx, gy, 0, 0, 0], instruction, flags', () => {
    const obs = new RobotEnv().reset('hidden-target', 1)
    expect(obs.tick).toBe(0)
    expect(obs.proprio).toHaveLength(PROPRIO_SIZE)
    expect(Array.from(obs.proprio.subarray(2))).toEqual([0, 0, 0])
    expect(obs.memoryDependent).toBe(false)
    expect(obs.instruction).toMatch(/magenta/)
  })

  it('step takes an action or a chunk (executing its first action) alike', () => {
    const [a, b] = [new RobotEnv(), new RobotEnv()]
    a.reset('pick-place', 9)
    b.reset('pick-place', 9)
    while (!a.done) {
      const chunk = expertChunk(a.episode, a.world)
      expect(fingerprint(a.step(chunk))).toBe(fingerprint(b.step(chunk[0])))
    }
  })

  it('executeChunk runs count actions open-loop and stops when the episode ends', () => {
    const env = new RobotEnv()
    env.reset('reach-red', 4)
    const chunk = expertChunk(env.episode, env.world)
    const results = executeChunk(env, chunk, 3)
    expect(results.map((r) => r.tick)).toEqual([1, 2, 3])
    while (env.world.tick < env.episode.maxTicks - 2) env.step(chunk[0])
    expect(executeChunk(env, chunk)).toHaveLength(2)
    expect(env.done).toBe(true)
    expect(() => executeChunk(env, chunk, 0)).toThrow(RangeError)
  })

  it('step after done, before reset, and unknown tasks throw', () => {
    const env = new RobotEnv()
    expect(() => env.step({ dx: 0, dy: 0, grip: 0 })).toThrow(/reset/)
    expect(() => env.reset('fly', 0)).toThrow(/unknown robot task 'fly'/)
    env.reset('reach-red', 0)
    while (!env.done) env.step({ dx: 0, dy: 0, grip: 0 })
    expect(() => env.step({ dx: 0, dy: 0, grip: 0 })).toThrow(/done/)
  })

  it('chunkToArray / chunkFromArray: Float32Array [K, 3] rows (dx, dy, grip)', () => {
    const chunk = [
      { dx: 0.5, dy: -0.25, grip: 1 },
      { dx: 0, dy: 1, grip: 0 },
      { dx: -1, dy: 0, grip: 0 },
      { dx: 0.125, dy: 0.75, grip: 1 },
    ]
    const flat = chunkToArray(chunk)
    expect(flat).toHaveLength(CHUNK_TICKS * 3)
    expect(Array.from(flat.subarray(0, 3))).toEqual([0.5, -0.25, 1])
    expect(chunkFromArray(flat)).toEqual(chunk)
    expect(() => chunkFromArray(new Float32Array(5))).toThrow(RangeError)
  })
})
