import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  GRASP_RADIUS_M,
  MAX_SPEED_MPS,
  MAX_STEP_M,
  RobotEnv,
  TASK_NAMES,
  clampAction,
  stepWorld,
  type World,
} from '../../../sim/robot/index.ts'

const EPS = 1e-9
const anyNumber = fc.oneof(
  fc.double({ min: -5, max: 5, noNaN: true }),
  fc.constantFrom(NaN, Infinity, -Infinity),
)
const anyAction = fc.record({
  dx: anyNumber,
  dy: anyNumber,
  grip: fc.double({ min: -1, max: 2, noNaN: true }),
})

describe('robot physics', () => {
  it('clampAction: norm ≤ 1, unchanged inside the unit disc, non-finite → 0, grip is a bit', () => {
    fc.assert(
      fc.property(anyAction, (a) => {
        const c = clampAction(a)
        expect(Math.hypot(c.dx, c.dy)).toBeLessThanOrEqual(1 + 1e-12)
        if (Math.hypot(a.dx, a.dy) <= 1) expect([c.dx, c.dy]).toEqual([a.dx, a.dy])
        if (!Number.isFinite(a.dx)) expect(c.dx).toBe(0)
        expect(c.grip).toBe(a.grip >= 0.5 ? 1 : 0)
      }),
    )
  })

  it('any actions: gripper stays inside, moves ≤ 0.1 m per tick, proprio agrees, held things follow', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...TASK_NAMES),
        fc.nat(),
        fc.array(anyAction, { minLength: 1, maxLength: 24 }),
        (task, seed, actions) => {
          const env = new RobotEnv()
          env.reset(task, seed)
          for (const action of actions) {
            if (env.done) break
            const before = { x: env.world.gripper.x, y: env.world.gripper.y, held: env.world.gripper.held }
            // the delay period's brake: the gripper stays put and keeps its grip, whatever was sent
            const held = env.world.tick < env.episode.holdUntilTick
            const gripBefore = env.world.gripper.grip
            const obs = env.step(action)
            const g = env.world.gripper
            expect(g.x).toBeGreaterThanOrEqual(0)
            expect(g.x).toBeLessThanOrEqual(1)
            expect(g.y).toBeGreaterThanOrEqual(0)
            expect(g.y).toBeLessThanOrEqual(1)
            expect(Math.hypot(g.x - before.x, g.y - before.y)).toBeLessThanOrEqual(MAX_STEP_M + EPS)
            const [px, py, vx, vy, grip] = obs.proprio
            expect([px, py, vx, vy, grip]).toEqual(
              Array.from(Float32Array.of(g.x, g.y, g.vx, g.vy, g.grip)),
            )
            expect(Math.hypot(vx, vy)).toBeLessThanOrEqual(MAX_SPEED_MPS + 1e-6)
            expect(grip).toBe(held ? gripBefore : clampAction(action).grip)
            if (held) expect([g.x, g.y, g.vx, g.vy]).toEqual([before.x, before.y, 0, 0])
            // stepWorld carries what was held, then applies the grip: an object grasped this tick
            // stays where it is (within the grasp radius) and follows from the next tick on
            if (g.held >= 0 && g.held === before.held)
              expect([env.world.objects[g.held].x, env.world.objects[g.held].y]).toEqual([g.x, g.y])
            if (g.held >= 0 && g.held !== before.held)
              expect(Math.hypot(env.world.objects[g.held].x - g.x, env.world.objects[g.held].y - g.y)).toBeLessThanOrEqual(GRASP_RADIUS_M + EPS)
            if (g.grip === 0) expect(g.held).toBe(-1)
          }
        },
      ),
      // the counterexample that showed the grasp-tick case (a grasp after a NaN-dx move)
      { numRuns: 300, examples: [['reach-red', 875394423, [{ dx: NaN, dy: -0.9039602976328668, grip: 0.5 }, { dx: NaN, dy: NaN, grip: 0 }]]] },
    )
  })

  function tinyWorld(graspable: boolean): World {
    return {
      tick: 0,
      gripper: { x: 0.5, y: 0.5, vx: 0, vy: 0, grip: 0, held: -1 },
      objects: [
        { name: 'a', shape: 'disc', color: [1, 2, 3], x: 0.6, y: 0.5, sizeM: 0.06, graspable },
        {
          name: 'b',
          shape: 'square',
          color: [4, 5, 6],
          x: 0.6 + GRASP_RADIUS_M + 0.001,
          y: 0.5,
          sizeM: 0.06,
          graspable,
        },
      ],
      markers: [],
      occluders: [],
    }
  }

  it('closing grasps the nearest graspable object in reach, carrying moves it, opening releases', () => {
    const w = tinyWorld(true)
    stepWorld(w, { dx: 1, dy: 0, grip: 1 }) // lands on a and closes
    expect(w.gripper.held).toBe(0)
    stepWorld(w, { dx: 0, dy: 1, grip: 1 })
    expect([w.objects[0].x, w.objects[0].y]).toEqual([w.gripper.x, w.gripper.y])
    stepWorld(w, { dx: 0, dy: 1, grip: 0 })
    expect(w.gripper.held).toBe(-1)
    expect(w.objects[0].y).toBeCloseTo(0.7, 12) // moved with the gripper, then left there
  })

  it('no grasp out of reach, of an ungraspable object, or by staying closed', () => {
    const far = tinyWorld(true)
    stepWorld(far, { dx: 0, dy: 0, grip: 1 }) // a is 0.1 m away
    expect(far.gripper.held).toBe(-1)
    stepWorld(far, { dx: 1, dy: 0, grip: 1 }) // arrives already closed
    expect(far.gripper.held).toBe(-1)
    const sliding = tinyWorld(false)
    stepWorld(sliding, { dx: 1, dy: 0, grip: 1 })
    expect(sliding.gripper.held).toBe(-1)
  })

  it('walls stop the gripper and its reported velocity', () => {
    const w = tinyWorld(true)
    for (let i = 0; i < 8; i++) stepWorld(w, { dx: -1, dy: 0.1, grip: 0 })
    expect(w.gripper.x).toBe(0)
    expect(w.gripper.vx).toBe(0)
    expect(w.gripper.vy).toBeCloseTo(0.1 / Math.hypot(1, 0.1), 12) // the other axis still moves
  })
})
