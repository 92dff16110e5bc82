/**
 * Portability: the simulator has no Node-only code, bundles for workerd with esbuild, and draws
 * the same pixels as the pinned hashes in fixtures/expert-hashes.json. Those were recorded by
 * running the expert in workerd (wrangler dev, 2026-11) and equal what Node 22 computes; if a
 * deliberate rendering change moves them, regenerate from two fresh runs that agree.
 */
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'
import { rolloutExpert } from '../../../sim/gui/expert.ts'
import { frameHash } from '../../../sim/gui/raster.ts'
import { TASKS } from '../../../sim/gui/tasks.ts'

const ROOT = path.resolve(import.meta.dirname, '../../..')
const SIM = path.join(ROOT, 'sim/gui')
const golden = JSON.parse(
  readFileSync(path.join(import.meta.dirname, 'fixtures/expert-hashes.json'), 'utf8'),
)

/** Hashes of the expert's observations, from whatever module set `api` is. */
function expertHashes(api: { rolloutExpert: typeof rolloutExpert; frameHash: typeof frameHash }) {
  return Object.fromEntries(
    TASKS.map((t) => {
      const run = api.rolloutExpert(t.name, golden.seed)
      const frames = run.steps.map((s) => api.frameHash(s.observation.frame))
      return [t.name, { frames, finalPngBytes: run.final.png().length }]
    }),
  )
}

describe('portability', () => {
  it('uses no Node APIs, Buffer, clock or Math.random in the simulator sources', () => {
    const files = readdirSync(SIM, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && f !== 'examples.ts')
      .map((f) => path.join(SIM, f))
    expect(files.length).toBeGreaterThan(20)
    for (const file of files) {
      const code = readFileSync(file, 'utf8')
      const imports = [...code.matchAll(/from '([^']+)'/g)].map((m) => m[1])
      for (const spec of imports)
        expect(spec.startsWith('.') || spec === 'fast-png', `${file}: ${spec}`).toBe(true)
      expect(code, file).not.toMatch(
        /\bBuffer\.|Math\.random\(|Date\.now\(|\bprocess\.|performance\./,
      )
    }
  })

  it('bundles for workerd with esbuild, with identical pixels', async () => {
    const out = await build({
      entryPoints: [path.join(SIM, 'index.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      conditions: ['workerd', 'worker', 'browser'],
      write: false,
      logLevel: 'silent',
    })
    const code = out.outputFiles[0].text
    expect(code).not.toMatch(/["']node:/)
    const api = await import(`data:text/javascript;base64,${btoa(code)}`)
    expect(expertHashes(api)).toEqual(expertHashes({ rolloutExpert, frameHash }))
  })

  it('draws the pinned pixels (recorded in workerd)', () => {
    expect(expertHashes({ rolloutExpert, frameHash })).toEqual(golden.tasks)
  })
})
