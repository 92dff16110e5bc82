/**
 * The OpenAPI 3.1 document served by `wrangler dev` (`GET /openapi.json`, no auth) describes what
 * the Worker really sends: each main route is called for real (JSON bodies), the request body is
 * validated against the document's request schema, and the reply against the document's schema
 * for that path, method, status and media type — by Ajv (JSON Schema 2020-12, OpenAPI 3.1's
 * dialect), a validator independent of the zod code that generated the document.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_KEY } from '../../sim/client.ts'
import { RobotEnv } from '../../sim/robot/index.ts'
import { GuiEnv } from '../../sim/gui/index.ts'
import { startWrangler, type Wrangler } from '../../sim/wrangler.ts'

const dir = mkdtempSync(path.join(tmpdir(), 'stepkv-openapi-'))
let server: Wrangler
let doc: any
let ajv: Ajv2020
beforeAll(async () => {
  server = await startWrangler(dir)
  const res = await fetch(`${server.url}/openapi.json`)
  expect(res.status).toBe(200)
  doc = await res.json()
  ajv = new Ajv2020({ strict: false, allErrors: true })
  ajv.addFormat('binary', true)
  ajv.addFormat('byte', true)
  ajv.addFormat('date-time', (s: string) => !Number.isNaN(Date.parse(s)))
  ajv.addSchema({ ...doc, $id: 'openapi' })
})
afterAll(async () => {
  await server?.kill()
  rmSync(dir, { recursive: true, force: true })
})

const ptr = (s: string) => s.replaceAll('~', '~0').replaceAll('/', '~1')

/** Validates `value` against the schema at `pointer` inside the document (`valid`: the expected verdict). */
function check(pointer: string, value: unknown, valid = true): void {
  const validate = ajv.getSchema(`openapi#${pointer}`) ?? ajv.compile({ $ref: `openapi#${pointer}` })
  const ok = validate(value)
  expect(ok, `${pointer}\n${JSON.stringify(validate.errors, null, 1)}\n${JSON.stringify(value).slice(0, 800)}`).toBe(valid)
}

/** Calls `method template` (path params filled from `params`), checks request and reply against the document. */
async function call(method: string, template: string, params: Record<string, string>, body?: unknown, headers: Record<string, string> = {}, bodyValid = true) {
  const op = doc.paths[template]?.[method.toLowerCase()]
  expect(op, `${method} ${template} is documented`).toBeDefined()
  if (body !== undefined) check(`/paths/${ptr(template)}/${method.toLowerCase()}/requestBody/content/application~1json/schema`, body, bodyValid)
  const url = template.replace(/\{(\w+)\}/g, (_, k) => params[k])
  const res = await fetch(`${server.url}${url}`, {
    method,
    headers: { authorization: `Bearer ${DEV_KEY}`, ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const type = (res.headers.get('content-type') ?? '').split(';')[0]
  const data = type.includes('json') ? await res.json() : new Uint8Array(await res.arrayBuffer())
  expect(op.responses[res.status], `${method} ${template} documents status ${res.status}: ${JSON.stringify(data).slice(0, 300)}`).toBeDefined()
  expect(Object.keys(op.responses[res.status].content ?? {})).toContain(type)
  if (type.includes('json')) check(`/paths/${ptr(template)}/${method.toLowerCase()}/responses/${res.status}/content/${ptr(type)}/schema`, data)
  return { status: res.status, data: data as any, headers: res.headers }
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64')

describe('GET /openapi.json', () => {
  it('is OpenAPI 3.1, public, and lists every route with the bearer scheme', async () => {
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' })
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/healthz', '/v1/models', '/v1/sessions', '/v1/sessions/{id}', '/v1/sessions/{id}/steps', '/v1/sessions/{id}/memory',
        '/v1/sessions/{id}/reset', '/v1/sessions/{id}/snapshots', '/v1/sessions/{id}/snapshots/{name}', '/v1/sessions/{id}/rollback', '/v1/sessions/{id}/fork']),
    )
    // The request schemas are the ones the Worker validates with (strict objects).
    expect(doc.components.schemas.StepRequest.additionalProperties).toBe(false)
    expect(doc.components.schemas.StepRequest.required).toEqual(['seq', 'observation'])
  })

  it('real replies of the main routes validate against the document', async () => {
    expect((await call('GET', '/healthz', {})).status).toBe(200)
    expect((await call('GET', '/v1/models', {})).data.models.length).toBeGreaterThan(0)
    const created = await call('POST', '/v1/sessions', {}, { model: 'tiny-gqa', policy: { name: 'window', params: { recentTokens: 32 } } })
    expect(created.status).toBe(201)
    const id = created.data.id as string
    const p = { id }
    expect((await call('GET', '/v1/sessions/{id}', p)).status).toBe(200)
    const step = await call('POST', '/v1/sessions/{id}/steps', p, { seq: 1, observation: { text: 'open the menu' }, options: { returnLogits: true } })
    expect(step.status).toBe(200)
    expect((await call('POST', '/v1/sessions/{id}/steps', p, { seq: 2, observation: { tokens: [104, 105] } })).status).toBe(200)
    // Problems: schema (400: the document refuses that body too), seq (409), unknown session (404), no key (401).
    expect((await call('POST', '/v1/sessions/{id}/steps', p, { seq: 3, observation: { text: 1 } }, {}, false)).status).toBe(400)
    expect((await call('POST', '/v1/sessions/{id}/steps', p, { seq: 3, observation: { text: 'x' }, extra: 1 }, {}, false)).status).toBe(400)
    expect((await call('POST', '/v1/sessions/{id}/steps', p, { seq: 7, observation: { text: 'x' } })).status).toBe(409)
    expect((await call('GET', '/v1/sessions/{id}', { id: 's_' + '0'.repeat(32) })).status).toBe(404)
    expect((await call('GET', '/v1/models', {}, undefined, { authorization: 'Bearer nope' })).status).toBe(401)
    // Memory export (binary) and conditional import.
    const blob = await call('GET', '/v1/sessions/{id}/memory', p)
    expect(blob.status).toBe(200)
    const put = await fetch(`${server.url}/v1/sessions/${id}/memory`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${DEV_KEY}`, 'content-type': 'application/x-stepkv-memory', 'if-match': blob.headers.get('etag')! },
      body: blob.data,
    })
    expect(put.status).toBe(200)
    check(`/paths/${ptr('/v1/sessions/{id}/memory')}/put/responses/200/content/application~1json/schema`, await put.json())
    // Lifecycle: snapshot, list, rollback, fork, policy change, reset, snapshot delete.
    expect((await call('POST', '/v1/sessions/{id}/snapshots', p, { name: 'two' })).status).toBe(201)
    expect((await call('POST', '/v1/sessions/{id}/snapshots', p, { name: 'two' })).status).toBe(409)
    expect((await call('GET', '/v1/sessions/{id}/snapshots', p)).data.snapshots).toHaveLength(1)
    expect((await call('POST', '/v1/sessions/{id}/rollback', p, { snapshot: 'two' })).status).toBe(200)
    expect((await call('POST', '/v1/sessions/{id}/rollback', p, { snapshot: 'none' })).status).toBe(404)
    const fork = await call('POST', '/v1/sessions/{id}/fork', p, {})
    expect(fork.status).toBe(201)
    expect((await call('PATCH', '/v1/sessions/{id}', p, { policy: { name: 'window', params: { recentTokens: 16 } } })).status).toBe(200)
    expect((await call('PATCH', '/v1/sessions/{id}', p, { policy: { name: 'window', params: { recentTokens: 'x' } } })).status).toBe(400)
    expect((await call('POST', '/v1/sessions/{id}/reset', p, {}, { 'if-match': '"99.99"' })).status).toBe(412)
    expect((await call('POST', '/v1/sessions/{id}/reset', p, {})).status).toBe(200)
    expect((await call('DELETE', '/v1/sessions/{id}/snapshots/{name}', { id, name: 'two' })).status).toBe(200)
    expect((await call('DELETE', '/v1/sessions/{id}', { id: fork.data.id })).status).toBe(200)
    expect((await call('DELETE', '/v1/sessions/{id}', p)).status).toBe(200)
  })

  it('agent replies validate too: a robot action chunk (raw RGB8 frames, base64) and a GUI action (PNG)', async () => {
    const robot = await call('POST', '/v1/sessions', {}, { model: 'robot-carried' })
    const obs = new RobotEnv().reset('reach-red', 1)
    const observation = {
      images: obs.frames.map((f) => ({ width: f.width, height: f.height, data: b64(f.data) })),
      proprio: [...obs.proprio],
      instruction: obs.instruction,
    }
    const r = await call('POST', '/v1/sessions/{id}/steps', { id: robot.data.id }, { seq: 1, observation })
    expect(r.status).toBe(200)
    expect(r.data.action).toHaveLength(4)
    const gui = await call('POST', '/v1/sessions', {}, { model: 'gui-carried', policy: { name: 'guikv', params: { budgetTokens: 64 } } })
    const screen = new GuiEnv().reset('click-button', 2)
    const g = await call('POST', '/v1/sessions/{id}/steps', { id: gui.data.id }, { seq: 1, observation: { image: b64(screen.png()), instruction: screen.instruction } })
    expect(g.status).toBe(200)
    expect(typeof g.data.action.type).toBe('string')
  })
})
