/**
 * @module `npm run bench -- codec`: SKVM envelope throughput on a realistic memory — the trained
 * GUI model's (gui-carried) full cache after 16 real simulator frames — in Node and inside workerd
 * (the bench worker), against allocate-and-copy of the same bytes in the same process; and the
 * bytes each step persists under every configuration at T = 16.
 */
import { pack, unpack } from 'msgpackr'
import { measureCodec, type CodecRow } from './codec-core.ts'
import { startDev } from './dev-server.ts'
import { guiFrameTokens, guiSessionFrames } from './frames.ts'
import { historyConfigs, playSession } from './history-core.ts'
import { nodeDeps } from './node-deps.ts'
import { codecTargets } from './targets.ts'

/** History length of the codec's memory (frames). */
export const CODEC_T = 16

/**
 * Runs the codec bench.
 * @param minMs time per measurement (ms)
 * @param workerd also measure inside workerd
 * @returns the memory's shape, rows per runtime, persisted bytes per step, targets
 */
export async function runCodec(minMs: number, workerd: boolean, log: (s: string) => void) {
  const frames = guiSessionFrames(CODEC_T)
  const prompt8Tokens = frames.slice(0, 8).reduce((n, f) => n + guiFrameTokens(f, 48), 0)
  const configs = historyConfigs(prompt8Tokens).filter((c) => !c.reencode)
  const deps = nodeDeps()
  const full = configs.find((c) => c.id === 'full')!
  const { memory, blob } = await playSession(deps, full, frames, CODEC_T)
  log(`memory: gui-carried full cache at T = ${CODEC_T}: ${memory.tokens} tokens × ${memory.layers.length} layers, blob ${blob.byteLength} bytes`)
  const rows: (CodecRow & { runtime: string })[] = (await measureCodec(blob, minMs)).map((r) => ({ ...r, runtime: 'node' }))
  if (workerd) {
    const dev = await startDev('bench/workerd/wrangler.toml')
    try {
      const res = await fetch(`${dev.url}/codec`, { method: 'POST', body: pack({ blob, minMs }) as Uint8Array<ArrayBuffer> })
      const body = unpack(new Uint8Array(await res.arrayBuffer()))
      if (res.status !== 200) throw new Error(`workerd codec: ${body?.error ?? res.status}`)
      rows.push(...(body.rows as CodecRow[]).map((r) => ({ ...r, runtime: 'workerd' })))
    } finally {
      await dev.stop()
    }
  }
  for (const r of rows) r.mbPerS = Math.round(r.mbPerS)
  for (const r of rows) log(`${r.runtime.padEnd(8)} ${r.op.padEnd(9)} ${r.storage.padEnd(8)} ${String(r.bytes).padStart(9)} B  ${String(r.mbPerS).padStart(6)} MB/s  (${r.calls} calls)`)
  const persisted = []
  for (const c of configs) {
    const { memory: m, blob: b } = await playSession(deps, c, frames, CODEC_T)
    persisted.push({ config: c.id, model: c.model, memoryTokens: m.tokens, bytesPerStep: b.byteLength })
  }
  const targets = [...codecTargets(rows.filter((r) => r.runtime === 'node'), 'node'), ...(workerd ? codecTargets(rows.filter((r) => r.runtime === 'workerd'), 'workerd') : [])]
  return {
    memory: { model: 'gui-carried', policy: 'full', T: CODEC_T, tokens: memory.tokens, layers: memory.layers.length, kvHeads: memory.kvHeads, headDim: memory.headDim, blobBytes: blob.byteLength },
    minMs,
    rows,
    persisted,
    targets,
  }
}
