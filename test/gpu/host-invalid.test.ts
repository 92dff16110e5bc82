/**
 * A captured step that fails while writing the session's K/V in place (the gather into the bound
 * past slots) leaves device memory that no longer matches its metadata (`ResidentMemory.invalid`):
 * the host drops the session, and its next step reloads the durable copy — with the steps after
 * that copy declared lost (`restored`), never run on the half-written K/V. The failure is injected
 * by wrapping `residentStaticStep` (on wasm the gather never writes in place).
 */
import { describe, expect, it, vi } from 'vitest'
import type * as StaticStep from '../../gpu/static-step.ts'

let failAt = 0
let calls = 0
vi.mock('../../gpu/static-step.ts', async (importOriginal) => {
  const real = await importOriginal<typeof StaticStep>()
  return {
    ...real,
    residentStaticStep: async (...args: Parameters<typeof real.residentStaticStep>) => {
      if (++calls === failAt) {
        args[2].invalid = true
        throw new Error('injected: gather failed after writing part of the slots')
      }
      return real.residentStaticStep(...args)
    },
  }
})

const { MemoryStore } = await import('../../gpu/durable.ts')
const { HostSessions } = await import('../../gpu/host-sessions.ts')
const { defaultModelsDir, modelsFrom } = await import('../../gpu/host.ts')
const { selectBackend } = await import('../../gpu/webgpu.ts')
const { unpackBody } = await import('../../worker/body.ts')

const WINDOW = { name: 'window', params: { sinkTokens: 4, recentTokens: 40 } }
const text = (seq: number) => ({ text: `step ${seq}: the code is ${(seq * 7919) % 1000} and more text` })

describe('captured step that corrupts its memory', () => {
  it('drops the session; the next step restores the durable copy and declares the lost steps', async () => {
    const store = new MemoryStore()
    const sessions = new HostSessions({ choice: await selectBackend('wasm'), store, model: modelsFrom(defaultModelsDir()), fixedCapacity: 16, capture: true, durableEvery: 3 })
    await sessions.create('s_i', { model: 'tiny-gqa', policy: WINDOW, memoryDtype: 'float32' })
    calls = 0
    failAt = 5
    for (let seq = 1; seq <= 4; seq++) await sessions.step('s_i', { seq, observation: text(seq) })
    expect(sessions.hotCount).toBe(1)
    await expect(sessions.step('s_i', { seq: 5, observation: text(5) })).rejects.toThrow(/injected/)
    expect(sessions.hotCount).toBe(0) // dropped, not kept on the half-written K/V
    // durable copy at step 3 (every 3 steps); step 4 is lost and the reply says so
    const reply = unpackBody((await sessions.step('s_i', { seq: 5, observation: text(5) })).packed) as Record<string, unknown>
    expect(reply).toMatchObject({ seq: 5, graph: 'fixed', restored: { fromSeq: 3, lostSteps: 1 } })
  })
})
