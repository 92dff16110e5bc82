/**
 * Retention of observations. By default nothing of a step's observation — screenshot, camera
 * frames, instruction — is stored beyond the step: after GUI and robot steps, every value of every
 * table of the session's Durable Object (and its key-value entries) is searched for the sent bytes.
 * A session created with `retainFrames: N` keeps exactly the last N observations (`frames.ts`),
 * served back as sent by `GET …/frames[/:seq]`, dropped on reset.
 */
import { env, runInDurableObject } from 'cloudflare:test'
import { exports } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { api, OTHER_KEY } from '../../sim/client.ts'
import { GuiEnv } from '../../sim/gui/index.ts'

const fetcher = (url: string, init?: RequestInit) => exports.default.fetch(new Request(url, init))
const client = api(fetcher)
const stubOf = (id: string) => env.SESSIONS.get(env.SESSIONS.idFromName(`dev/${id}`))

/** Every byte the session's object stores: all columns of all its SQLite tables, and its
 * key-value entries (msgpack-free: strings as UTF-8, blobs as they are). */
async function storedBytes(id: string): Promise<{ tables: string[]; bytes: Buffer }> {
  const { tables, parts } = await runInDurableObject(stubOf(id), async (_o, state) => {
    const names = state.storage.sql
      .exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`)
      .toArray()
      .map((r) => r.name)
    const out: Uint8Array[] = []
    const add = (v: unknown) => {
      if (v instanceof ArrayBuffer) out.push(new Uint8Array(v))
      else if (typeof v === 'string') out.push(new TextEncoder().encode(v))
    }
    for (const name of names) for (const row of state.storage.sql.exec(`SELECT * FROM "${name}"`).toArray()) Object.values(row).forEach(add)
    for (const [k, v] of await state.storage.list()) {
      add(k)
      add(v instanceof Uint8Array ? new Uint8Array(v).buffer : JSON.stringify(v))
    }
    return { tables: names.sort(), parts: out }
  })
  return { tables, bytes: Buffer.concat(parts.map((p) => Buffer.from(p))) }
}

const contains = (hay: Buffer, needle: Uint8Array) => hay.indexOf(Buffer.from(needle)) >= 0

/** A seeded RGB8 frame (high-entropy bytes, so a match cannot be a coincidence). */
function frame(size: number, seed: number) {
  const data = new Uint8Array(size * size * 3)
  let x = seed * 2654435761
  for (let i = 0; i < data.length; i++) data[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24
  return { width: size, height: size, data }
}
const robotObservation = (seq: number) => ({
  images: [frame(32, seq), frame(16, 100 + seq)],
  proprio: [0.25, 0.5, 0, 0, 0],
  instruction: `reach the hidden marker, run ${seq}`,
})

describe('frames are not stored beyond the step by default', () => {
  it('robot: no camera frame or instruction anywhere in the object after the steps', async () => {
    const id = (await client.createSession({ model: 'robot-carried', policy: { name: 'full' } })).data.id as string
    expect((await client.info(id)).data.retainFrames).toBe(0)
    const sent = [1, 2, 3].map(robotObservation)
    for (const [i, observation] of sent.entries()) expect((await client.step(id, i + 1, observation, undefined, true)).status).toBe(200)
    const { tables, bytes } = await storedBytes(id)
    expect(tables).not.toContain('retained_frames')
    expect(bytes.length).toBeGreaterThan(100_000) // the memory blob is there: the search covers it
    for (const o of sent) {
      for (const img of o.images) {
        expect(contains(bytes, img.data.subarray(0, 48))).toBe(false)
        expect(contains(bytes, img.data.subarray(img.data.length - 48))).toBe(false)
      }
      expect(contains(bytes, new TextEncoder().encode(o.instruction))).toBe(false)
    }
    // The search does find what is stored (the blob's model id): it is not blind.
    expect(contains(bytes, new TextEncoder().encode('robot-carried'))).toBe(true)
    const frames = await client.call('GET', `/v1/sessions/${id}/frames`)
    expect(frames.data).toEqual({ retainFrames: 0, frames: [] })
  })

  it('GUI: no screenshot (PNG) bytes anywhere in the object after the steps', async () => {
    const id = (await client.createSession({ model: 'gui-carried', policy: { name: 'full' } })).data.id as string
    const gui = new GuiEnv()
    const obs = gui.reset('click-button', 7)
    const png = obs.png().slice()
    expect((await client.step(id, 1, { image: png, instruction: obs.instruction }, undefined, true)).status).toBe(200)
    const { bytes } = await storedBytes(id)
    const mid = Math.floor(png.length / 2)
    expect(contains(bytes, png.subarray(mid, mid + 32))).toBe(false)
    expect(contains(bytes, png.subarray(0, 24))).toBe(false) // PNG signature + IHDR
    expect(contains(bytes, new TextEncoder().encode(obs.instruction))).toBe(false)
  })
})

describe('retainFrames: N keeps the last N observations', () => {
  it('keeps exactly the last 2 of 3, serves them as sent, drops them on reset', async () => {
    const id = (await client.createSession({ model: 'robot-carried', policy: { name: 'full' }, retainFrames: 2 })).data.id as string
    expect((await client.info(id)).data.retainFrames).toBe(2)
    const sent = [1, 2, 3].map(robotObservation)
    for (const [i, observation] of sent.entries()) expect((await client.step(id, i + 1, observation, undefined, true)).status).toBe(200)

    const list = await client.call('GET', `/v1/sessions/${id}/frames`)
    expect(list.status).toBe(200)
    expect(list.data.retainFrames).toBe(2)
    expect(list.data.frames.map((f: { seq: number }) => f.seq)).toEqual([2, 3])
    for (const f of list.data.frames) expect(f.bytes).toBeGreaterThan(32 * 32 * 3 + 16 * 16 * 3)

    // msgpack: the observation as sent, bytes for bytes.
    const packed = await client.call('GET', `/v1/sessions/${id}/frames/3`, undefined, true)
    expect(packed.status).toBe(200)
    const back = packed.data as typeof sent[2]
    expect(back.instruction).toBe(sent[2].instruction)
    expect(back.proprio).toEqual(sent[2].proprio)
    expect(back.images.map((i) => [i.width, i.height])).toEqual([[32, 32], [16, 16]])
    back.images.forEach((img, k) => expect(Buffer.from(img.data).equals(Buffer.from(sent[2].images[k].data))).toBe(true))
    // JSON: bytes as base64, the step request's JSON form.
    const json = await client.call('GET', `/v1/sessions/${id}/frames/2`)
    expect(json.data.seq).toBe(2)
    expect(json.data.observation.images[1].data).toBe(Buffer.from(sent[1].images[1].data).toString('base64'))
    // Step 1 fell out of the window, and its bytes are gone from storage; steps 2 and 3 are there.
    const gone = await client.call('GET', `/v1/sessions/${id}/frames/1`)
    expect(gone.status).toBe(404)
    expect(gone.data.code).toBe('unknown_frame')
    let { bytes } = await storedBytes(id)
    expect(contains(bytes, sent[0].images[0].data.subarray(0, 48))).toBe(false)
    expect(contains(bytes, sent[1].images[0].data.subarray(0, 48))).toBe(true)
    expect(contains(bytes, sent[2].images[1].data.subarray(0, 48))).toBe(true)

    // Another tenant sees nothing.
    const other = api(fetcher, 'http://stepkv.test', OTHER_KEY)
    expect((await other.call('GET', `/v1/sessions/${id}/frames/3`)).status).toBe(404)

    // A replayed seq does not store twice; a reset drops them all.
    expect((await client.step(id, 3, sent[2], undefined, true)).status).toBe(200)
    expect((await client.call('GET', `/v1/sessions/${id}/frames`)).data.frames.map((f: { seq: number }) => f.seq)).toEqual([2, 3])
    expect((await client.call('POST', `/v1/sessions/${id}/reset`, {})).status).toBe(200)
    expect((await client.call('GET', `/v1/sessions/${id}/frames`)).data.frames).toEqual([])
    ;({ bytes } = await storedBytes(id))
    for (const o of sent) expect(contains(bytes, o.images[0].data.subarray(0, 48))).toBe(false)
  })

  it('refuses a retention over MAX_RETAINED_FRAMES (default 16) with a 400 problem', async () => {
    const r = await client.createSession({ model: 'robot-carried', retainFrames: 17 })
    expect(r.status).toBe(400)
    expect(r.data.code).toBe('invalid_retention')
    expect(r.data.limit).toBe(16)
    const bad = await client.createSession({ retainFrames: -1 })
    expect(bad.status).toBe(400)
    expect(bad.data.code).toBe('invalid_request')
  })
})
