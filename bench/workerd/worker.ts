/**
 * @module The bench worker (`bench/workerd/wrangler.toml`): the `history` bench's in-process step
 * and the codec bench, run inside workerd by the same code as in Node, on the stepkv Worker's own
 * bundled models and ORT build (`worker/models.ts`). Requests and replies are msgpack:
 * - `POST /history` `{config, frames, Ts, plan}` → `{points}` (`measureHistory`)
 * - `POST /codec` `{blob, minMs}` → `{rows}` (`measureCodec` on the decoded blob)
 * - `GET /healthz` → 200
 * Failures answer 500 with `{error}`. Timing uses `performance.now()`, which advances in whole
 * milliseconds in local workerd (production Workers freeze it between I/O: measure locally).
 */
import { pack, unpack } from 'msgpackr'
import { adapterOf, runtimeOf } from '../../worker/models.ts'
import { measureCodec } from '../codec-core.ts'
import { measureHistory, type StepDeps } from '../history-core.ts'

const deps: StepDeps = { runtime: runtimeOf, adapter: (model) => adapterOf(model, 1 << 20) }
const msgpack = (body: unknown, status = 200) =>
  new Response(pack(body) as Uint8Array<ArrayBuffer>, { status, headers: { 'content-type': 'application/msgpack' } })

export default {
  async fetch(request: Request): Promise<Response> {
    const { pathname } = new URL(request.url)
    if (pathname === '/healthz') return new Response('ok')
    try {
      const body = unpack(new Uint8Array(await request.arrayBuffer()))
      if (pathname === '/history') return msgpack({ points: await measureHistory(deps, body.config, body.frames, body.Ts, body.plan) })
      if (pathname === '/codec') return msgpack({ rows: await measureCodec(body.blob, body.minMs) })
      return msgpack({ error: `no route ${pathname}` }, 404)
    } catch (e) {
      return msgpack({ error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }, 500)
    }
  },
}
