/**
 * The simulator must run in Node, inside workerd and as an esbuild bundle (for data generation on
 * a GPU machine): no `node:` imports, no Buffer, no process, no Math.random, no clock in its source
 * (the Node-only example writer in `examples/` excepted), and a browser-platform bundle that runs.
 */
import { build } from 'esbuild'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import * as direct from '../../../sim/robot/index.ts'
import { expertPolicy, fingerprint, runEpisode } from './helpers.ts'

const ROOT = new URL('../../../sim/robot/', import.meta.url)
const FORBIDDEN = [
  /from ['"]node:/,
  /\bBuffer\b/,
  /\bprocess\./,
  /Math\.random/,
  /Date\.now|performance\.now/,
  /require\(/,
]

function simSources(dir = ROOT.pathname): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? e.name === 'examples'
        ? []
        : simSources(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [join(dir, e.name)]
        : [],
  )
}

describe('robot sim portability', () => {
  it('sim source uses only plain JS and typed arrays', () => {
    const files = simSources()
    expect(files.length).toBeGreaterThan(10)
    for (const file of files) {
      const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '') // code only
      for (const pattern of FORBIDDEN)
        expect(text, `${file} matches ${pattern}`).not.toMatch(pattern)
    }
  })

  it('bundles with esbuild (platform browser, ESM); the bundle replays the same episodes', async () => {
    const out = await build({
      entryPoints: [new URL('index.ts', ROOT).pathname],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      logLevel: 'silent',
    })
    const code = out.outputFiles[0].text
    expect(code).not.toMatch(/from ['"]node:|require\(['"]/)
    const file = join(mkdtempSync(join(tmpdir(), 'robot-sim-')), 'robot-sim.mjs')
    writeFileSync(file, code)
    const bundled = (await import(pathToFileURL(file).href)) as typeof direct
    for (const task of direct.TASK_NAMES) {
      const env = new bundled.RobotEnv()
      let obs = env.reset(task, 42)
      const frames = [fingerprint(obs)]
      while (!env.done)
        frames.push(fingerprint((obs = env.step(bundled.expertChunk(env.episode, env.world)))))
      expect(env.success).toBe(true)
      expect(frames).toEqual(
        runEpisode(new direct.RobotEnv(), task, 42, expertPolicy).observations.map(fingerprint),
      )
      expect(bundled.png(obs.frames[0])).toEqual(direct.png(obs.frames[0]))
    }
  })
})
