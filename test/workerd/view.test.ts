/**
 * The memory inspector page in workerd: a view link from `POST …/view-link`, the page it opens
 * (HTML, security headers), its heat-map cells against the exported memory decoded independently
 * (a frame's patch = position − the frame's first prefix position, taken from the step replies'
 * `nextPosition`), and the refusals: forged, expired, other session's tokens (403), other tenant
 * (404), bad body (400).
 */
import { env } from 'cloudflare:test'
import { exports } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { decodeMemory } from '../../memory/codec.ts'
import { verifyMemory } from '../../memory/signing.ts'
import type { SessionMemory } from '../../memory/types.ts'
import { api, DEV_KEY, OTHER_KEY } from '../../sim/client.ts'
import { GuiEnv } from '../../sim/gui/index.ts'
import { RobotEnv } from '../../sim/robot/index.ts'
import { signViewToken } from '../../worker/view-link.ts'
import { cellsOf, expectedCells, visualFrames } from '../e2e/view-tools.ts'
import { keyOf } from './signing-tools.ts'

const fetcher = (url: string, init?: RequestInit) => exports.default.fetch(new Request(url, init))
const client = api(fetcher)
const other = api(fetcher, 'http://stepkv.test', OTHER_KEY)

async function viewLink(id: string, body?: unknown, key = DEV_KEY) {
  const r = await fetcher(`http://stepkv.test/v1/sessions/${id}/view-link`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: r.status, data: (await r.json()) as any }
}

/** A gui-carried session under GUI-KV with a small budget (evicts visual tokens), `steps` steps;
 * the PNG sent at each step. */
async function guiSession(steps: number, extra: Record<string, unknown> = {}) {
  const created = await client.createSession({ model: 'gui-carried', policy: { name: 'guikv', params: { budgetTokens: 96 } }, ...extra })
  expect(created.status, JSON.stringify(created.data)).toBe(201)
  const id = created.data.id as string
  const gui = new GuiEnv()
  let obs = gui.reset('code-entry', 3)
  const starts = new Map<number, number>()
  const pngs = new Map<number, Uint8Array>()
  let next = 0
  for (let seq = 1; seq <= steps; seq++) {
    starts.set(seq, next)
    pngs.set(seq, obs.png().slice())
    const r = await client.step(id, seq, { image: obs.png(), instruction: obs.instruction }, undefined, true)
    expect(r.status, JSON.stringify(r.data)).toBe(200)
    next = r.data.memory.nextPosition
    if (!gui.done) obs = gui.step(r.data.action)
  }
  return { id, starts, pngs }
}

async function exported(id: string): Promise<SessionMemory> {
  const blob = (await client.exportMemory(id)).data as Uint8Array
  await verifyMemory(blob, await keyOf('dev'), 'dev')
  return decodeMemory(blob, undefined, { hmacVerified: true }).memory
}

describe('memory inspector page', () => {
  it('a view link opens the page; its heat-map cells are the memory’s kept visual tokens', async () => {
    const { id, starts } = await guiSession(4)
    const link = await viewLink(id)
    expect(link.status, JSON.stringify(link.data)).toBe(201)
    expect(link.data.ttlSeconds).toBe(600)
    expect(link.data.url).toBe(`http://stepkv.test/v1/sessions/${id}/view?token=${link.data.token}`)
    expect(Date.parse(link.data.expiresAt) - Date.now()).toBeGreaterThan(590_000)
    const page = await fetcher(link.data.url)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(page.headers.get('cache-control')).toBe('no-store')
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'")
    const html = await page.text()
    expect(html).toContain('<svg id="layers-over-steps"')
    expect(html.match(/class="layer-line"/g)).toHaveLength(4)
    expect(html).not.toContain('<script')
    const mem = await exported(id)
    const frames = visualFrames(mem)
    expect(frames[0]).toBe(4)
    const cells = cellsOf(html)
    expect(cells).toHaveLength(frames.length * 4 * 48)
    expect(cells).toEqual(expectedCells(mem, frames, starts))
    // Eviction happened: some patch is gone from some layer, and some is kept.
    expect(cells.some((c) => c[3] === 0)).toBe(true)
    expect(cells.some((c) => c[3] > 0)).toBe(true)
    // The per-frame table matches the memory: rows per head per frame and layer.
    const row = html.match(/<tr data-frame="4">(.*?)<\/tr>/)![1]
    const perHead = mem.layers.map((layer) => layer.frames.filter((f) => f === 4).length / mem.kvHeads)
    expect([...row.matchAll(/<td>([\d.]+)<\/td>/g)].slice(1).map((m) => Number(m[1]))).toEqual(perHead.map((n) => +n.toFixed(2)))
  })

  it('with retainFrames, each heat map lies over its frame’s screenshot (the PNG sent); without, the page says why not', async () => {
    const { id, pngs } = await guiSession(3, { retainFrames: 2 })
    const html = await (await fetcher((await viewLink(id)).data.url)).text()
    const images = [...html.matchAll(/<image class="screenshot" href="data:image\/png;base64,([^"]+)"/g)].map((m) => m[1])
    const frames = [...new Set(cellsOf(html).map((c) => c[0]))]
    const retained = frames.filter((f) => f >= 2) // the last 2 steps' observations are retained
    expect(images).toHaveLength(retained.length * 4) // one per layer's grid
    const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes))
    expect(new Set(images)).toEqual(new Set(retained.map((f) => b64(pngs.get(f)!))))
    expect(html).toContain('The session retains its last 2 observations')
    const plain = await guiSession(1)
    const none = await (await fetcher((await viewLink(plain.id)).data.url)).text()
    expect(none).not.toContain('<image')
    expect(none).toContain('this session retains no observations')
  })

  it('robot: two cameras per frame (top then wrist, 4×4 each) placed by their offset in the prefix; RGB8 frames become PNG screenshots', async () => {
    const id = (await client.createSession({ model: 'robot-carried', policy: { name: 'window', params: { sinkTokens: 4, recentTokens: 60 } }, retainFrames: 3 })).data.id
    const robot = new RobotEnv()
    let obs = robot.reset('hidden-target', 2)
    const starts = new Map<number, number>()
    let next = 0
    for (let seq = 1; seq <= 3; seq++) {
      starts.set(seq, next)
      const r = await client.step(id, seq, { images: obs.frames.map((f) => ({ width: f.width, height: f.height, data: f.data })), proprio: [...obs.proprio], instruction: obs.instruction }, undefined, true)
      expect(r.status, JSON.stringify(r.data)).toBe(200)
      next = r.data.memory.nextPosition
      obs = robot.step(r.data.action)
    }
    const html = await (await fetcher((await viewLink(id)).data.url)).text()
    const mem = await exported(id)
    const re = /<rect class="patch" data-frame="(\d+)" data-camera="(top|wrist)" data-layer="(\d+)" data-patch="(\d+)" data-heads="(\d+)"/g
    const cells = [...html.matchAll(re)].map((m) => [Number(m[1]), m[2], Number(m[3]), Number(m[4]), Number(m[5])] as const)
    expect(cells.length).toBeGreaterThan(0)
    for (const [frame, camera, layer, patch, heads] of cells) {
      const position = starts.get(frame)! + (camera === 'wrist' ? 16 : 0) + patch
      const l = mem.layers[layer]
      let kept = 0
      for (let i = 0; i < l.frames.length; i++) if (l.frames[i] === frame && l.positions[i] === position) kept++
      expect(heads, `frame ${frame} ${camera} layer ${layer} patch ${patch}`).toBe(kept)
    }
    expect(new Set(cells.map((c) => c[1]))).toEqual(new Set(['top', 'wrist']))
    expect(html.match(/<image class="screenshot" href="data:image\/png;base64,/g)!.length).toBe(new Set(cells.map((c) => `${c[0]}/${c[1]}/${c[2]}`)).size)
  })

  it('a TempoFit session (gui-tempo): the bank’s layers and frames', async () => {
    const id = (await client.createSession({ model: 'gui-tempo', policy: { name: 'tempofit', params: { frames: 2 } } })).data.id
    const gui = new GuiEnv()
    let obs = gui.reset('click-button', 4)
    for (let seq = 1; seq <= 3; seq++) {
      const r = await client.step(id, seq, { image: obs.png(), instruction: obs.instruction }, undefined, true)
      expect(r.status, JSON.stringify(r.data)).toBe(200)
      if (!gui.done) obs = gui.step(r.data.action)
    }
    const page = await fetcher((await viewLink(id)).data.url)
    expect(page.status).toBe(200)
    const html = await page.text()
    const mem = await exported(id)
    const layerIds = mem.layerIds!
    expect(html.match(/class="layer-line" data-layer="(\d+)"/g)!.map((m) => Number(m.match(/\d+/)![0]))).toEqual(layerIds)
    expect([...html.matchAll(/<tr data-frame="(\d+)">/g)].map((m) => Number(m[1]))).toEqual([3, 2]) // the bank: the last 2 frames
  })

  it('after reset, new steps and a rollback, the page does not use the other episode’s history', async () => {
    const id = (await client.createSession({ model: 'gui-carried', policy: { name: 'full' } })).data.id as string
    const episode = async (task: string, steps: number) => {
      const gui = new GuiEnv()
      let obs = gui.reset(task, 1)
      const starts = new Map<number, number>()
      let next = 0
      for (let seq = 1; seq <= steps; seq++) {
        starts.set(seq, next)
        const r = await client.step(id, seq, { image: obs.png(), instruction: obs.instruction }, undefined, true)
        expect(r.status, JSON.stringify(r.data)).toBe(200)
        next = r.data.memory.nextPosition
        if (!gui.done) obs = gui.step(r.data.action)
      }
      return starts
    }
    const post = (route: string, body: unknown) => client.call('POST', `/v1/sessions/${id}/${route}`, body)
    const first = await episode('code-entry', 2)
    expect((await post('snapshots', { name: 'two' })).status).toBe(201)
    expect((await post('reset', {})).status).toBe(200)
    const second = await episode('click-button', 3)
    expect(second.get(2)).not.toBe(first.get(2)) // the instructions differ in length: so do the prefix starts
    const page = async () => (await fetcher((await viewLink(id)).data.url)).text()
    expect(cellsOf(await page())).toEqual(expectedCells(await exported(id), [3, 2, 1], second)) // the live episode's history
    expect((await post('rollback', { snapshot: 'two' })).status).toBe(200)
    const html = await page()
    expect(html).toContain('No steps on this trajectory yet')
    expect(html).toContain('prefix at position 0, inferred') // starts inferred from the kept positions (full cache: exact)
    expect(cellsOf(html)).toEqual(expectedCells(await exported(id), [2, 1], first))
  })

  it('a text session gets the charts without heat maps', async () => {
    const id = (await client.createSession({ model: 'tiny-gqa', policy: { name: 'window', params: { sinkTokens: 4, recentTokens: 24 } } })).data.id
    for (let seq = 1; seq <= 3; seq++) expect((await client.step(id, seq, { text: `screen ${seq}: the quick brown fox` })).status).toBe(200)
    const html = await (await fetcher((await viewLink(id, { ttlSeconds: 60 })).data.url)).text()
    expect(html).toContain('id="frames-over-steps"')
    // Per layer after step 3: the frames' rows per head add up to the 28 kept (4 sinks + 24 recent).
    for (const layer of [0, 1, 2, 3]) {
      const cells = [...html.matchAll(new RegExp(`class="frame-cell" data-layer="${layer}" data-step="3" data-frame="(\\d+)" data-tokens="([\\d.]+)"`, 'g'))]
      expect(cells.reduce((n, m) => n + Number(m[2]), 0), `layer ${layer}`).toBe(28)
      expect(cells.map((m) => Number(m[1]))).toEqual([3, 1]) // newest first: 24 recent of frame 3 (29 tokens), 4 sinks of frame 1
    }
    expect(cellsOf(html)).toEqual([])
    expect(html).toContain('<dd id="tokens">28</dd>')
  })

  it('refuses forged, expired and other sessions’ tokens (403), other tenants (404), bad bodies (400)', async () => {
    const { id } = await guiSession(1)
    const { token } = (await viewLink(id)).data as { token: string }
    const view = async (t: string | undefined, sid = id) => {
      const r = await fetcher(`http://stepkv.test/v1/sessions/${sid}/view${t === undefined ? '' : `?token=${encodeURIComponent(t)}`}`)
      return { status: r.status, type: r.headers.get('content-type'), data: (await r.json()) as any }
    }
    const [payload, tag] = token.split('.')
    const flipped = `${payload}.${tag[0] === 'A' ? 'B' : 'A'}${tag.slice(1)}`
    for (const bad of [undefined, '', 'x', flipped, `${payload}.${tag}.x`, `${btoa('{"t":"dev","s":"' + id + '","e":9999999999}')}.${tag}`]) {
      const r = await view(bad)
      expect([r.status, r.data.code, r.type]).toEqual([403, 'view_link_invalid', 'application/problem+json'])
    }
    const now = Math.floor(Date.now() / 1000)
    const expired = await view(await signViewToken(env, { tenant: 'dev', session: id, expiresAt: now - 1 }))
    expect([expired.status, expired.data.code]).toEqual([403, 'view_link_expired'])
    const tooLong = await view(await signViewToken(env, { tenant: 'dev', session: id, expiresAt: now + 3600 }))
    expect([tooLong.status, tooLong.data.code]).toEqual([403, 'view_link_invalid'])
    const second = (await guiSession(1)).id
    expect((await view(token, second)).status).toBe(403) // another session's token
    // Another tenant: no link for dev's session, and its own valid token does not reach it.
    expect((await viewLink(id, undefined, OTHER_KEY)).status).toBe(404)
    const foreign = await view(await signViewToken(env, { tenant: 'other', session: id, expiresAt: now + 60 }))
    expect([foreign.status, foreign.data.code]).toEqual([404, 'unknown_session'])
    expect((await other.info(id)).status).toBe(404)
    for (const body of [{ ttlSeconds: 601 }, { ttlSeconds: 0 }, { ttlSeconds: 1.5 }, { extra: 1 }]) {
      const r = await viewLink(id, body)
      expect([r.status, r.data.code]).toEqual([400, 'invalid_request'])
    }
    // No bearer key on the link route: 401.
    expect((await fetcher(`http://stepkv.test/v1/sessions/${id}/view-link`, { method: 'POST' })).status).toBe(401)
  })
})
