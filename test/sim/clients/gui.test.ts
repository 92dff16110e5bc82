/**
 * The GUI client against an in-process fake API whose policy is the simulator's expert: every
 * task is solved, the wire format is what the GUI adapter reads, and memoryless mode uses one
 * fresh session per step.
 */
import { describe, expect, it } from 'vitest'
import { api } from '../../../sim/client.ts'
import { runGuiEpisode } from '../../../sim/clients/gui.ts'
import { GuiEnv, TASKS, expertAction } from '../../../sim/gui/index.ts'
import { FakeClock, fakeServer } from './fake-server.ts'

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47]

function expertServer(env: GuiEnv) {
  return fakeServer({
    act: ({ observation }) => {
      const image = observation.image as Uint8Array
      expect(image).toBeInstanceOf(Uint8Array)
      expect([...image.subarray(0, 4)]).toEqual(PNG_MAGIC)
      expect(observation.instruction).toBe(env.episode.instruction)
      return expertAction(env)
    },
  })
}

describe('runGuiEpisode', () => {
  it('solves every task with an expert server (one session per episode, deleted after)', async () => {
    const env = new GuiEnv()
    const server = expertServer(env)
    const client = api(server.fetch)
    const policy = { name: 'full' }
    const seeds = [1000, 1001]
    for (const task of TASKS)
      for (const seed of seeds) {
        const r = await runGuiEpisode(client, {
          model: 'gui-carried',
          policy,
          task: task.name,
          seed,
          env,
        })
        expect(r.success, `${task.name} ${seed}`).toBe(true)
        expect(r.memoryTask).toBe(task.memory)
        expect(r.stepMs).toHaveLength(r.steps)
        expect(r.memoryBytes).toBe(1000 * r.steps) // the last reply's memory.bytes
      }
    expect(server.sessions).toHaveLength(TASKS.length * seeds.length)
    expect(server.sessions.every((s) => s.deleted && s.model === 'gui-carried')).toBe(true)
    expect(server.sessions[0].policy).toEqual({ name: 'full', params: {} })
  })

  it('memoryless: every step in a fresh session at seq 1', async () => {
    const env = new GuiEnv()
    const server = expertServer(env)
    const r = await runGuiEpisode(api(server.fetch), {
      model: 'gui-carried',
      policy: { name: 'full' },
      task: 'code-entry',
      seed: 1000,
      memoryless: true,
      env,
    })
    expect(r.success).toBe(true)
    expect(r.steps).toBeGreaterThan(2)
    expect(server.sessions).toHaveLength(r.steps)
    expect(server.steps.map((s) => s.session.id)).toEqual(server.sessions.map((s) => s.id))
    expect(server.sessions.every((s) => s.seq === 1 && s.deleted)).toBe(true)
    expect(r.memoryBytes).toBe(1000)
  })

  it('measures step latency on the given clock', async () => {
    const env = new GuiEnv()
    const clock = new FakeClock()
    const server = fakeServer({ act: () => expertAction(env), clock, delayMs: (call) => 10 + call })
    const r = await runGuiEpisode(api(server.fetch), {
      model: 'm',
      policy: { name: 'full' },
      task: 'click-button',
      seed: 3,
      env,
      clock,
    })
    expect(r.stepMs).toEqual(r.stepMs.map((_, i) => 10 + i))
  })

  it('throws with the server problem on a failed step', async () => {
    const server = fakeServer({ act: () => ({ type: 'done' }) })
    const client = api(server.fetch)
    const broken = {
      ...client,
      step: () => client.call('POST', '/v1/sessions/nope/steps', { seq: 1, observation: {} }, true),
    }
    await expect(
      runGuiEpisode(broken, {
        model: 'm',
        policy: { name: 'full' },
        task: 'click-button',
        seed: 3,
      }),
    ).rejects.toThrow(/HTTP 404 not_found/)
  })
})
