/**
 * The robot control loop against an in-process fake API on a virtual clock: the expert server
 * succeeds, late replies are counted as deadline misses and run the previous chunk's leftovers then
 * the late chunk time-aligned, requests leave on tick boundaries, `realtime: false` changes nothing
 * but the count, and memoryless mode uses a session per request.
 */
import { describe, expect, it } from 'vitest'
import { api } from '../../../sim/client.ts'
import { runRobotEpisode } from '../../../sim/clients/robot.ts'
import {
  RobotEnv,
  TASKS,
  expertChunk,
  type Action,
  type ActionChunk,
  type StepResult,
} from '../../../sim/robot/index.ts'
import { FakeClock, fakeServer, type FakeStep } from './fake-server.ts'

/** Records every action the env executes. */
class RecordingEnv extends RobotEnv {
  actions: Action[] = []
  override step(action: Action | ActionChunk): StepResult {
    this.actions.push(Array.isArray(action) ? (action as ActionChunk)[0] : (action as Action))
    return super.step(action)
  }
}

const policy = { name: 'full' }

function checkObservation(env: RobotEnv, { observation }: FakeStep) {
  const images = observation.images as { width: number; height: number; data: Uint8Array }[]
  expect(images.map((f) => [f.width, f.height, f.data.length])).toEqual([
    [32, 32, 32 * 32 * 3],
    [16, 16, 16 * 16 * 3],
  ])
  const g = env.world.gripper
  expect(observation.proprio).toEqual(Array.from(Float32Array.of(g.x, g.y, g.vx, g.vy, g.grip)))
}

function expertServer(env: RobotEnv, clock: FakeClock, delayMs?: (call: number) => number) {
  return fakeServer({
    clock,
    delayMs,
    act: (step) => {
      checkObservation(env, step)
      return expertChunk(env.episode, env.world)
    },
  })
}

describe('runRobotEpisode', () => {
  it('succeeds on every task with an expert server on time, one request per 100 ms tick', async () => {
    for (const task of TASKS)
      for (const seed of [1000, 1001]) {
        const env = new RobotEnv()
        const clock = new FakeClock()
        const server = expertServer(env, clock, () => 30)
        const r = await runRobotEpisode(api(server.fetch), {
          model: 'robot-carried',
          policy,
          task: task.name,
          seed,
          env,
          clock,
        })
        expect(r.success, `${task.name} ${seed}`).toBe(true)
        expect(r.memoryTask).toBe(task.memory)
        expect([r.deadlineMisses, r.heldTicks]).toEqual([0, 0])
        expect(r.steps).toBe(r.ticks)
        expect(r.ticks).toBe(env.episode.maxTicks)
        expect(server.steps.map((s) => s.at)).toEqual(server.steps.map((_, i) => 100 * i)) // paced at 10 Hz
        expect(r.stepMs.every((ms) => ms === 30)).toBe(true)
        expect(server.sessions).toHaveLength(1)
        expect(server.sessions[0].deleted).toBe(true)
      }
  })

  it('counts deadline misses and still succeeds with the expert when every third reply is late', async () => {
    for (const task of TASKS) {
      const env = new RobotEnv()
      const clock = new FakeClock()
      const server = expertServer(env, clock, (call) => (call % 3 === 2 ? 150 : 40))
      const r = await runRobotEpisode(api(server.fetch), {
        model: 'robot-carried',
        policy,
        task: task.name,
        seed: 1000,
        env,
        clock,
      })
      const late = r.stepMs.filter((ms) => ms > 100).length
      expect(late).toBeGreaterThan(0)
      expect(r.deadlineMisses).toBe(late)
      // 150 ms = one tick passed per late reply (fewer if the episode ended during the wait)
      expect(r.heldTicks).toBeLessThanOrEqual(late)
      expect(r.heldTicks).toBeGreaterThanOrEqual(late - 1)
      expect(r.ticks).toBe(env.episode.maxTicks)
      expect(r.ticks - r.heldTicks).toBeLessThanOrEqual(r.steps) // ticks that ran a fresh action
      expect(r.success, task.name).toBe(true)
      // each request leaves on a tick boundary: its time is 100 ms × the env's tick then
      const ticksAt = server.steps.map((s) => s.at / 100)
      expect(ticksAt.every(Number.isInteger)).toBe(true)
    }
  })

  it('runs the previous chunk for the ticks that passed, then the late chunk time-aligned', async () => {
    const env = new RecordingEnv()
    const clock = new FakeClock()
    const delays = [0, 150, 450, 100]
    /** Action i of call c: dx = c / 10, dy = i / 10; call 1 closes the gripper on its last action. */
    const chunk = (c: number) =>
      [0, 1, 2, 3].map((i) => ({ dx: c / 10, dy: i / 10, grip: c === 1 && i === 3 ? 1 : 0 }))
    const server = fakeServer({
      clock,
      delayMs: (c) => delays[c] ?? 0,
      act: ({ call }) => chunk(call),
    })
    const r = await runRobotEpisode(api(server.fetch), {
      model: 'm',
      policy,
      task: 'pick-place',
      seed: 5,
      env,
      clock,
    })
    const hold = (grip: number) => ({ dx: 0, dy: 0, grip })
    expect(env.actions.slice(0, 9)).toEqual([
      chunk(0)[0], // call 0 on time, tick 0
      chunk(0)[1], // call 1 took 150 ms: tick 1 runs call 0's next action …
      chunk(1)[1], // … then call 1's chunk from index 1 at tick 2
      chunk(1)[2], // call 2 took 450 ms: ticks 3–6 run call 1's leftovers, then hold (grip kept closed)
      chunk(1)[3],
      hold(1),
      hold(1),
      hold(1), // tick 7: call 2's chunk is wholly stale (4 ticks passed ≥ K)
      chunk(3)[0], // call 3 took exactly 100 ms: on time (the deadline is inclusive)
    ])
    expect(server.steps.slice(0, 4).map((s) => s.at)).toEqual([0, 100, 300, 800])
    expect(r.deadlineMisses).toBe(2)
    expect(r.heldTicks).toBe(1 + 4 + 1)
    expect(r.ticks).toBe(24)
    expect(r.ticks - r.heldTicks).toBe(r.steps - 1) // call 2's chunk ran no action
  })

  it('realtime: false counts misses but runs every reply chunk[0], unpaced', async () => {
    const env = new RecordingEnv()
    const clock = new FakeClock()
    const server = fakeServer({
      clock,
      delayMs: (c) => (c === 2 ? 450 : 20),
      act: ({ call }) => [0, 1, 2, 3].map((i) => ({ dx: call / 100, dy: i, grip: 0 })),
    })
    const r = await runRobotEpisode(api(server.fetch), {
      model: 'm',
      policy,
      task: 'reach-red',
      seed: 5,
      env,
      clock,
      realtime: false,
    })
    expect(r.deadlineMisses).toBe(1)
    expect(r.heldTicks).toBe(0)
    expect(r.steps).toBe(r.ticks)
    expect(env.actions.map((a) => [a.dx, a.dy])).toEqual(env.actions.map((_, c) => [c / 100, 0]))
    expect(clock.now()).toBe(20 * (r.steps - 1) + 450) // no sleeping
  })

  it('honours the rate: 20 Hz makes 60 ms replies late', async () => {
    const env = new RobotEnv()
    const clock = new FakeClock()
    const server = expertServer(env, clock, () => 60)
    const r = await runRobotEpisode(api(server.fetch), {
      model: 'm',
      policy,
      task: 'reach-red',
      seed: 1000,
      env,
      clock,
      rateHz: 20,
    })
    expect(r.deadlineMisses).toBe(r.steps)
    expect(r.heldTicks).toBe(r.steps - (r.ticks % 2 === 1 ? 1 : 0)) // 2 ticks per request; the last may be cut short
  })

  it('memoryless: every request in a fresh session at seq 1', async () => {
    const env = new RobotEnv()
    const clock = new FakeClock()
    const server = expertServer(env, clock)
    const r = await runRobotEpisode(api(server.fetch), {
      model: 'm',
      policy,
      task: 'hidden-target',
      seed: 1000,
      env,
      clock,
      memoryless: true,
    })
    expect(r.success).toBe(true)
    expect(server.sessions).toHaveLength(r.steps)
    expect(server.steps.map((s) => s.session.id)).toEqual(server.sessions.map((s) => s.id))
    expect(server.sessions.every((s) => s.seq === 1 && s.deleted)).toBe(true)
  })
})
