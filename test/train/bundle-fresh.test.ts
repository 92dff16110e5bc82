/**
 * The committed bundles the GPU machine runs (`train/dist/gen.mjs`: the experts that make the
 * training data; `train/dist/eval.mjs`: closed-loop evaluation) are what `train/bundle.sh` builds
 * from the current sources: a simulator change without a rebuild would train on the old tasks.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const ROOT = path.resolve(import.meta.dirname, '../..')
const dir = mkdtempSync(path.join(tmpdir(), 'stepkv-bundle-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The esbuild command of train/bundle.sh, into `dir`. */
function bundle(entry: string, out: string, extra: string[] = []): string {
  const file = path.join(dir, out)
  execFileSync(path.join(ROOT, 'node_modules/.bin/esbuild'), [entry, '--bundle', '--platform=node', '--format=esm', '--target=node20', '--legal-comments=none', ...extra, `--outfile=${file}`, '--log-level=warning'], { cwd: ROOT })
  return readFileSync(file, 'utf8')
}

describe('train/dist bundles', () => {
  it('gen.mjs and eval.mjs equal a fresh build of train/gen.ts and train/eval.ts (run bash train/bundle.sh)', () => {
    expect(bundle('train/gen.ts', 'gen.mjs') === readFileSync(path.join(ROOT, 'train/dist/gen.mjs'), 'utf8'), 'train/dist/gen.mjs is stale').toBe(true)
    expect(bundle('train/eval.ts', 'eval.mjs', ['--external:onnxruntime-web']) === readFileSync(path.join(ROOT, 'train/dist/eval.mjs'), 'utf8'), 'train/dist/eval.mjs is stale').toBe(true)
  })
})
