/**
 * The package's `exports`: `stepkv/client` is the TypeScript client, `stepkv` the Worker entry
 * (the Hono app and the Durable Object classes, to mount in your own Worker).
 */
import { describe, expect, it } from 'vitest'
import * as client from 'stepkv/client'
import pkg from 'stepkv/package.json' with { type: 'json' }

describe('package exports', () => {
  it('stepkv/client exports the client, the typed errors and the control loop', () => {
    expect(typeof client.StepkvClient).toBe('function')
    expect(typeof client.runControlLoop).toBe('function')
    expect(new client.Conflict({ type: 't', title: 'Conflict', status: 409, code: 'seq_conflict', detail: 'd' })).toBeInstanceOf(client.StepkvProblem)
    expect(pkg.exports['./client']).toBe('./clients/ts/index.ts')
    expect(pkg.exports['.']).toBe('./worker/index.ts')
  })
})
