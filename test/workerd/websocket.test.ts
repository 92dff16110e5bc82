/**
 * WebSocket steps in workerd: msgpack step frames over `GET /v1/sessions/:id/ws` give the same
 * replies as `POST …/steps` on an identical session; a refused frame gets a problem frame and the
 * connection stays usable; the seq rules hold (replay, 409); the upgrade needs the key, the
 * session's tenant and an Upgrade header.
 */
import { exports } from 'cloudflare:workers'
import { pack, unpack } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { api, DEV_KEY, logitsOf, OTHER_KEY } from '../../sim/client.ts'

const client = api((url, init) => exports.default.fetch(new Request(url, init)))
const WINDOW = { name: 'window', params: { sinkTokens: 4, recentTokens: 48 } }

async function upgrade(id: string, key = DEV_KEY, headers: Record<string, string> = { upgrade: 'websocket' }) {
  return exports.default.fetch(new Request(`http://stepkv.test/v1/sessions/${id}/ws`, { headers: { authorization: `Bearer ${key}`, ...headers } }))
}

/** An accepted socket whose frames come back in order through `next()`. */
async function connect(id: string) {
  const res = await upgrade(id)
  expect(res.status).toBe(101)
  const ws = res.webSocket!
  ws.accept()
  ws.binaryType = 'arraybuffer' // the standard default is 'blob' (recent compatibility dates)
  const frames: unknown[] = []
  const waiting: ((v: unknown) => void)[] = []
  ws.addEventListener('message', (e) => {
    const value = unpack(new Uint8Array(e.data as ArrayBuffer))
    const w = waiting.shift()
    if (w) w(value)
    else frames.push(value)
  })
  const next = () => (frames.length ? Promise.resolve(frames.shift()) : new Promise((r) => waiting.push(r))) as Promise<any>
  const send = (value: unknown) => ws.send(pack(value) as Uint8Array<ArrayBuffer>)
  return { ws, next, send }
}

describe('WebSocket steps', () => {
  it('msgpack frames step like POST …/steps: the same replies, actions and logits', async () => {
    const a = (await client.createSession({ policy: WINDOW })).data.id as string
    const b = (await client.createSession({ policy: WINDOW })).data.id as string
    const { ws, next, send } = await connect(a)
    for (let seq = 1; seq <= 4; seq++) {
      const observation = { text: `screen ${seq}: the code is ${seq * 1111}` }
      send({ seq, observation, options: { returnLogits: true } })
      const viaSocket = await next()
      const viaHttp = (await client.step(b, seq, observation, { returnLogits: true }, true)).data
      expect(viaSocket.seq).toBe(seq)
      expect(viaSocket.action).toEqual(viaHttp.action)
      expect(viaSocket.memory).toEqual(viaHttp.memory)
      expect([...logitsOf(viaSocket)]).toEqual([...logitsOf(viaHttp)])
    }
    expect((await client.info(a)).data.seq).toBe(4)
    ws.close(1000, 'done')
  })

  it('refused frames get problem frames and the connection stays usable; seq rules hold', async () => {
    const id = (await client.createSession({ policy: WINDOW })).data.id as string
    const { ws, next, send } = await connect(id)
    send({ seq: 1, observation: { text: 5 } })
    expect(await next()).toMatchObject({ status: 400, code: 'invalid_request' })
    ws.send('{"seq": 1}')
    expect(await next()).toMatchObject({ status: 415, code: 'unsupported_media_type' })
    ws.send(new Uint8Array([0xc1]))
    expect(await next()).toMatchObject({ status: 400, code: 'malformed_body' })
    send({ seq: 2, observation: { text: 'early' } })
    expect(await next()).toMatchObject({ status: 409, code: 'seq_conflict' })
    send({ seq: 1, observation: { text: 'first' } })
    const first = await next()
    expect(first.seq).toBe(1)
    send({ seq: 1, observation: { text: 'first' } }) // a resent seq replays the stored reply
    expect(await next()).toEqual(first)
    // Frames sent back to back are answered in order.
    send({ seq: 2, observation: { text: 'two' } })
    send({ seq: 3, observation: { text: 'three' } })
    expect([(await next()).seq, (await next()).seq]).toEqual([2, 3])
    ws.close(1000, 'done')
  })

  it('the upgrade needs the key, the session’s tenant and Upgrade: websocket', async () => {
    const id = (await client.createSession({ policy: WINDOW })).data.id as string
    expect((await upgrade(id, 'wrong-key-0000000000000000000')).status).toBe(401)
    const other = await upgrade(id, OTHER_KEY)
    expect([other.status, ((await other.json()) as { code: string }).code]).toEqual([404, 'unknown_session'])
    const plain = await upgrade(id, DEV_KEY, {})
    expect([plain.status, ((await plain.json()) as { code: string }).code]).toEqual([426, 'upgrade_required'])
    expect((await upgrade('s_' + '0'.repeat(32))).status).toBe(404)
  })
})
