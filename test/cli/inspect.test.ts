/**
 * `stepkv inspect FILE` on real blobs: sessions stepped in-process with the served models (the
 * engine the Durable Object runs), encoded as the Durable Object stores them and signed as
 * `GET …/memory` exports them; the CLI runs as a subprocess (`bin/stepkv.js`). Expected token
 * counts come from the observations (UTF-8 bytes of each text; the robot encoder's tokens per
 * camera), not from the codec.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { adapterFor } from '../../agents/index.ts'
import { nodeEncoderSource, nodeModelSource } from '../../gpu/node-models.ts'
import { ortForNode } from '../../gpu/ort-node.ts'
import { ModelRuntime } from '../../gpu/session.ts'
import { encodeMemory } from '../../memory/codec.ts'
import { signMemory, tenantMemoryKey } from '../../memory/signing.ts'
import { roundTrip, type StorageOptions } from '../../memory/storage.ts'
import { RobotEnv } from '../../sim/robot/index.ts'
import { initialMemory, policyFor, runStep, type StepRequest } from '../../worker/engine.ts'

const run = promisify(execFile)
const ROOT = path.resolve(import.meta.dirname, '../..')
const BIN = path.join(ROOT, 'bin/stepkv.js')
const SECRET = 'dev-memory-hmac-secret-not-for-production-0000'
const dir = mkdtempSync(path.join(tmpdir(), 'stepkv-inspect-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Steps a session in-process and writes its memory blob (signed for `tenant` unless null). */
async function blobFile(name: string, model: string, policy: { name: string; params: Record<string, number> }, requests: Omit<StepRequest, 'seq'>[], storage: StorageOptions = { dtype: 'float32' }, tenant: string | null = 'dev') {
  const source = nodeModelSource(model)
  const m = source.manifest
  const runtime = ModelRuntime.for(ortForNode(), source)
  const adapter = adapterFor(m, 4096, m.encoder ? ModelRuntime.for(ortForNode(), nodeEncoderSource(model)) : undefined)
  const p = policyFor(m, policy.name, policy.params)
  let memory = initialMemory(m, p)
  for (const [i, r] of requests.entries())
    memory = roundTrip((await runStep(runtime, memory, p, { ...r, seq: i + 1 }, { maxPrefixTokens: 4096 }, adapter)).memory, storage)
  let blob = encodeMemory(memory, { policy: { name: p.name, params: { ...p.params } }, ...storage })
  if (tenant) blob = await signMemory(blob, await tenantMemoryKey(SECRET, tenant))
  const file = path.join(dir, name)
  writeFileSync(file, blob)
  return { file, blob, manifest: m }
}

async function inspect(...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, 'inspect', ...args], { cwd: ROOT, env: { ...process.env, MEMORY_HMAC_SECRET: '' } })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string }
    return { code: x.code, stdout: x.stdout, stderr: x.stderr }
  }
}

const bytesOf = (s: string) => new TextEncoder().encode(s).length

describe('stepkv inspect', () => {
  it('a full-cache text session: model, policy, layers, tokens per frame (pinned frame 2), valid signature', async () => {
    const texts = ['open the settings menu', 'the code is 4711', 'type the code']
    const { file, blob, manifest } = await blobFile('full.skvm', 'tiny-gqa', { name: 'full', params: {} }, texts.map((text, i) => ({ observation: { text }, ...(i === 1 && { options: { pin: true } }) })))
    const r = await inspect(file, '--json', '--secret', SECRET, '--tenant', 'dev')
    expect(r.code, r.stderr).toBe(0)
    const s = JSON.parse(r.stdout)
    expect(s).toMatchObject({
      bytes: blob.byteLength,
      formatVersion: blob[4] | (blob[5] << 8),
      signature: 'valid',
      model: { id: 'tiny-gqa', sha256: manifest.sha256 },
      policy: { name: 'full', params: {} },
      storage: { dtype: 'float32' },
      seq: 3,
      nextPosition: texts.reduce((n, t) => n + bytesOf(t), 0),
      layers: Array.from({ length: manifest.layers }, (_, l) => l),
      kvHeads: manifest.kvHeads,
      headDim: manifest.headDim,
      tokensPerLayer: texts.reduce((n, t) => n + bytesOf(t), 0),
    })
    expect(s.frames).toEqual([
      { frame: 1, tokens: { text: bytesOf(texts[0]) }, pinned: 0 },
      { frame: 2, tokens: { text: bytesOf(texts[1]) }, pinned: bytesOf(texts[1]) },
      { frame: 3, tokens: { text: bytesOf(texts[2]) }, pinned: 0 },
    ])
    expect(s.parts.header + s.parts.payload + s.parts.crc + s.parts.hmac).toBe(blob.byteLength)
    expect(s.parts.hmac).toBe(32)
    expect(r.stderr).toContain('verifying HMAC-SHA256')
    // Text output: the same facts for a person.
    const text = await inspect(file, '--tenant', 'dev', '--secret', SECRET, '-q')
    expect(text.stdout).toContain('signature   valid')
    expect(text.stdout).toContain('policy      full')
    expect(text.stdout).toMatch(/frame\s+text\s+pinned/)
    expect(text.stderr).toBe('')
  })

  it('signature status: another tenant or an altered byte → invalid; no secret → unverified; a stored blob → unsigned', async () => {
    const { file, blob } = await blobFile('window.skvm', 'tiny-gqa', { name: 'window', params: { sinkTokens: 2, recentTokens: 8 } }, [{ observation: { text: 'abcdefgh' } }, { observation: { text: 'ijklmnop' } }])
    expect(JSON.parse((await inspect(file, '--json', '-q', '--secret', SECRET, '--tenant', 'other')).stdout).signature).toBe('invalid')
    expect(JSON.parse((await inspect(file, '--json', '-q')).stdout).signature).toBe('unverified')
    const altered = new Uint8Array(blob)
    altered[altered.length - 1] ^= 1 // the tag itself: the blob still decodes
    writeFileSync(path.join(dir, 'altered.skvm'), altered)
    const s = JSON.parse((await inspect(path.join(dir, 'altered.skvm'), '--json', '-q', '--secret', SECRET, '--tenant', 'dev')).stdout)
    expect(s.signature).toBe('invalid')
    // The window kept 2 sinks + 8 recent tokens: frame 1 keeps its first 2, frame 2 all 8.
    expect(s.tokensPerLayer).toBe(10)
    expect(s.frames).toEqual([
      { frame: 1, tokens: { text: 2 }, pinned: 0 },
      { frame: 2, tokens: { text: 8 }, pinned: 0 },
    ])
    const short = await inspect(file, '-q', '--secret', 'short', '--tenant', 'dev') // a secret too short for a key
    expect(short.code).toBe(2)
    expect(short.stderr).toMatch(/^stepkv: --secret\/--tenant: /)
    expect(short.stderr).not.toMatch(/\n\s+at /)
    const stored = await blobFile('stored.skvm', 'tiny-gqa', { name: 'full', params: {} }, [{ observation: { text: 'x' } }], undefined, null)
    expect(JSON.parse((await inspect(stored.file, '--json', '-q')).stdout).signature).toBe('unsigned')
  })

  it('a robot TempoFit bank in KIVI 4-bit: the memory layers only, visual/proprio/text tokens of the last frames', async () => {
    const env = new RobotEnv()
    let obs = env.reset('hidden-target', 3)
    const requests: Omit<StepRequest, 'seq'>[] = []
    for (let t = 0; t < 3; t++) {
      requests.push({ observation: { images: obs.frames.map((f) => ({ width: f.width, height: f.height, data: f.data })), proprio: [...obs.proprio], instruction: obs.instruction } })
      obs = env.step({ dx: 0.1, dy: 0, grip: 0 })
    }
    const kivi: StorageOptions = { dtype: 'kivi', kivi: { bits: 4 } }
    const { file, manifest } = await blobFile('robot.skvm', 'robot-tempo', { name: 'tempofit', params: { frames: 2 } }, requests, kivi)
    const s = JSON.parse((await inspect(file, '--json', '-q', '--secret', SECRET, '--tenant', 'dev')).stdout)
    expect(s.signature).toBe('valid')
    expect(s.layers).toEqual(manifest.tempoLayers)
    expect(s.storage.dtype).toBe('kivi')
    expect(s.storage.kivi.layerBits.every((b: number) => b === 4)).toBe(true)
    const visual = manifest.encoder!.cameras.reduce((n, c) => n + c.visualTokens, 0)
    expect(s.frames.map((f: { frame: number }) => f.frame)).toEqual([2, 3])
    for (const f of s.frames) expect(f.tokens).toEqual({ visual, proprio: 1, text: bytesOf(requests[f.frame - 1].observation.instruction as string) })
  })

  it('refuses what is not a blob, or does not decode, with a message and exit code 2 (no stack)', async () => {
    writeFileSync(path.join(dir, 'junk.bin'), 'not a memory blob at all')
    const junk = await inspect(path.join(dir, 'junk.bin'), '-q')
    expect(junk.code).toBe(2)
    expect(junk.stderr).toMatch(/^stepkv: not a stepkv memory blob/)
    const { blob } = await blobFile('cut.skvm', 'tiny-gqa', { name: 'full', params: {} }, [{ observation: { text: 'hello' } }], undefined, null)
    writeFileSync(path.join(dir, 'cut.skvm'), blob.subarray(0, blob.length - 9))
    const cut = await inspect(path.join(dir, 'cut.skvm'), '-q')
    expect(cut.code).toBe(2)
    expect(cut.stderr).toMatch(/^stepkv: the blob does not decode: /)
    expect(cut.stderr).not.toMatch(/\n\s+at /)
    const missing = await inspect(path.join(dir, 'nope.skvm'), '-q')
    expect([missing.code, missing.stderr.trim()]).toEqual([2, `stepkv: cannot read ${path.join(dir, 'nope.skvm')}: ENOENT`])
    expect((await run(process.execPath, [BIN, 'inspect'], { cwd: ROOT }).catch((e) => e)).code).toBe(2)
  })
})
