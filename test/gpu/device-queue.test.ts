/**
 * The process-wide device queue (`onDevice`, gpu/session.ts): runs in order, one at a time; a run
 * that replays captured graphs leaves a clear that runs once, before the next run without one
 * (captured runs in a row skip it); a clear that fails is logged and the run still goes. ORT's
 * unflushed buffer releases are marked by uncaptured runs and `noteDeviceReleases`, and taken once
 * by the captured run that flushes them.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { deviceIdle, noteDeviceReleases, onDevice, releaseOnDevice, resetDeviceQueueState, takeDeviceReleases } from '../../gpu/session.ts'

afterEach(() => resetDeviceQueueState())

describe('onDevice', () => {
  it('runs jobs one at a time in order; the clear of a captured run goes once, before the next uncaptured run', async () => {
    const log: string[] = []
    const job = (name: string, ms = 0) => async () => {
      log.push(`${name}:start`)
      await new Promise((r) => setTimeout(r, ms))
      log.push(`${name}:end`)
      return name
    }
    const clear = async () => {
      log.push('clear')
    }
    const results = await Promise.all([
      onDevice(job('a', 5)),
      onDevice(job('replay1', 5), clear),
      onDevice(job('replay2'), clear), // captured after captured: no clear between
      onDevice(job('b')), // uncaptured: the pending clear first
      onDevice(job('c')), // nothing pending any more
    ])
    expect(results).toEqual(['a', 'replay1', 'replay2', 'b', 'c'])
    expect(log).toEqual(['a:start', 'a:end', 'replay1:start', 'replay1:end', 'replay2:start', 'replay2:end', 'clear', 'b:start', 'b:end', 'c:start', 'c:end'])
  })

  it('a clear that fails is logged; the run after it still goes, and the failure does not stick', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined)
    let clears = 0
    await onDevice(async () => 1, async () => {
      clears++
      throw new Error('clear failed')
    })
    await expect(onDevice(async () => 'after')).resolves.toBe('after')
    await expect(onDevice(async () => 'again')).resolves.toBe('again')
    expect(clears).toBe(1)
    expect(errors).toHaveBeenCalledTimes(1)
    expect(String(errors.mock.calls[0][0])).toContain('clear failed')
    errors.mockRestore()
  })

  it("a failing job rejects its own caller only; the queue goes on", async () => {
    const failed = onDevice(async () => {
      throw new Error('run failed')
    })
    const next = onDevice(async () => 'next')
    await expect(failed).rejects.toThrow('run failed')
    await expect(next).resolves.toBe('next')
  })

  it('resetDeviceQueueState drops a pending clear (after a lost device)', async () => {
    let clears = 0
    await onDevice(async () => undefined, async () => {
      clears++
    })
    resetDeviceQueueState()
    await onDevice(async () => undefined)
    expect(clears).toBe(0)
  })

  it('releases: marked by an uncaptured run or noteDeviceReleases, taken once; captured runs in a row find none', async () => {
    const seen: boolean[] = []
    const captured = () => onDevice(async () => void seen.push(takeDeviceReleases()), async () => undefined)
    await captured() // the state starts marked: nothing is known yet
    await captured()
    await onDevice(async () => undefined) // an uncaptured run (its clear runs too)
    await captured()
    await captured()
    noteDeviceReleases() // a device tensor disposed outside the queue
    await captured()
    resetDeviceQueueState() // a lost device: nothing known again
    await captured()
    expect(seen).toEqual([true, false, true, false, true, true])
  })

  it('releaseOnDevice: a release waits for the running job (never inside a captured run), runs no clear, marks releases; a failing one is logged', async () => {
    const log: string[] = []
    let clears = 0
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined)
    const replay = onDevice(async () => {
      log.push(`replay:start taken=${takeDeviceReleases()}`)
      await new Promise((r) => setTimeout(r, 5)) // ORT's run() awaits before it replays
      log.push('replay:end')
    }, async () => void clears++)
    const released = releaseOnDevice(() => log.push('dispose')) // asked for while the replay waits
    const failing = releaseOnDevice(() => {
      throw new Error('dispose failed')
    })
    const next = onDevice(async () => void log.push(`captured:start taken=${takeDeviceReleases()}`), async () => void clears++)
    await Promise.all([replay, released, failing, next, deviceIdle()])
    expect(log).toEqual(['replay:start taken=true', 'replay:end', 'dispose', 'captured:start taken=true'])
    expect(clears).toBe(0) // captured, release, release, captured: no uncaptured run needs a clear
    expect(errors).toHaveBeenCalledTimes(1)
    expect(String(errors.mock.calls[0][0])).toContain('dispose failed')
    errors.mockRestore()
  })
})
