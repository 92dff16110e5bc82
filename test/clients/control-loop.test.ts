/**
 * The fixed-rate control loop on virtual time: deadline misses, leftover and hold ticks, the late
 * chunk run time-aligned, pacing to the tick grid — expected schedules worked by hand below.
 */
import { describe, expect, it } from 'vitest'
import { runControlLoop, type Clock, type StepReply, type TickCommand } from '../../clients/ts/index.ts'

/** A virtual clock: `sleep` and the fake step advance `t`. */
function virtualClock(): Clock & { t: number } {
  const c = { t: 0, now: () => c.t, sleep: async (ms: number) => void (c.t += Math.max(0, ms)) }
  return c
}

/** A step that takes `latencies[i]` ms and answers a chunk of 4 actions named `<i>.<j>`. */
function stepper(clock: { t: number }, latencies: number[], chunk = 4) {
  let i = 0
  const sentAt: number[] = []
  const step = async (): Promise<StepReply> => {
    sentAt.push(clock.t)
    const n = i++
    clock.t += latencies[n]
    return { action: Array.from({ length: chunk }, (_, j) => `${n}.${j}`) } as unknown as StepReply
  }
  return { step, sentAt }
}

describe('runControlLoop', () => {
  it('10 Hz: on-time replies run chunk[0] each tick, one request per 100 ms tick', async () => {
    const clock = virtualClock()
    const { step, sentAt } = stepper(clock, [30, 40, 100])
    const ran: TickCommand<string>[] = []
    const stats = await runControlLoop<number, string>({ rateHz: 10, clock, maxTicks: 3, observe: (t) => t, step, act: (c) => void ran.push(c) })
    expect(ran.map((c) => [c.tick, c.action, c.source])).toEqual([
      [0, '0.0', 'fresh'],
      [1, '1.0', 'fresh'],
      [2, '2.0', 'fresh'], // 100 ms is on time (the deadline is inclusive)
    ])
    expect(sentAt).toEqual([0, 100, 200])
    expect(stats).toMatchObject({ ticks: 3, steps: 3, deadlineMisses: 0, heldTicks: 0, p50Ms: 40, maxMs: 100 })
  })

  it('a late reply: the ticks it missed run the previous chunk, then holds; the late chunk runs time-aligned', async () => {
    // Tick 0: 50 ms → chunk 0 (0.0 at tick 0; 0.1–0.3 left). Tick 1 (sent at 100): 350 ms →
    // ⌈350/100⌉ − 1 = 3 ticks passed: ticks 1, 2, 3 run 0.1, 0.2, 0.3 (leftovers); chunk 1 runs
    // 1.3 at tick 4. Next request at tick 5 (t = 500): 620 ms → 6 ticks passed: ticks 5–10 have
    // nothing left of chunk 1 → holds; chunk 2 (4 actions) is stale at index 6 → tick 11 holds.
    const clock = virtualClock()
    const { step, sentAt } = stepper(clock, [50, 350, 620])
    const ran: TickCommand<string>[] = []
    const misses: number[] = []
    const stats = await runControlLoop<number, string>({
      rateHz: 10,
      clock,
      observe: (t) => (t < 12 ? t : undefined),
      step,
      act: (c) => void ran.push(c),
      onDeadlineMiss: (m) => void misses.push(m.ticksPassed),
    })
    expect(sentAt).toEqual([0, 100, 500])
    expect(ran.map((c) => `${c.tick}:${c.action ?? '-'}:${c.source[0]}`)).toEqual([
      '0:0.0:f',
      '1:0.1:l', '2:0.2:l', '3:0.3:l', '4:1.3:f',
      '5:-:h', '6:-:h', '7:-:h', '8:-:h', '9:-:h', '10:-:h', '11:-:h',
    ])
    expect(stats).toMatchObject({ ticks: 12, steps: 3, deadlineMisses: 2, heldTicks: 10 })
    expect(misses).toEqual([3, 6])
  })

  it('realtime: false sends one request per tick as fast as replies come, chunk[0] each, misses still counted', async () => {
    const clock = virtualClock()
    const { step, sentAt } = stepper(clock, [250, 20])
    const ran: TickCommand<string>[] = []
    const stats = await runControlLoop<number, string>({ rateHz: 10, clock, realtime: false, maxTicks: 2, observe: (t) => t, step, act: (c) => void ran.push(c) })
    expect(ran.map((c) => c.action)).toEqual(['0.0', '1.0'])
    expect(sentAt).toEqual([0, 250])
    expect(stats.deadlineMisses).toBe(1)
  })

  it('a single (non-array) action is a chunk of one; maxTicks bounds the ticks a late reply fills', async () => {
    const clock = virtualClock()
    let calls = 0
    const ran: TickCommand<{ type: string }>[] = []
    const stats = await runControlLoop<number, { type: string }>({
      rateHz: 5, // 200 ms period
      clock,
      maxTicks: 3,
      observe: (t) => t,
      step: async () => {
        clock.t += calls++ === 0 ? 900 : 10 // 900 ms: 4 ticks would pass, only 2 remain
        return { action: { type: 'click' } } as unknown as StepReply
      },
      act: (c) => void ran.push(c),
    })
    expect(ran.map((c) => `${c.tick}:${c.source}`)).toEqual(['0:hold', '1:hold', '2:hold'])
    expect(stats).toMatchObject({ ticks: 3, steps: 1, deadlineMisses: 1, heldTicks: 3 })
  })

  it('rejects a rate ≤ 0', async () => {
    await expect(runControlLoop({ rateHz: 0, observe: () => 1, step: async () => ({}) as StepReply, act: () => {} })).rejects.toThrow(RangeError)
  })
})
