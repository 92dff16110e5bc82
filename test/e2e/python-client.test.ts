/**
 * The Python client (`clients/python`) in `npm test`: its unittest suite runs against this file's
 * `wrangler dev` (live tests: wire formats, replays, typed problems, lifecycle, control loop; plus
 * the transport and control-loop tests that need no server), and the package installs with pip
 * from its pyproject.toml (offline: `--no-index --no-build-isolation`). The interpreter is the first
 * of `$STEPKV_PYTHON`, `python3`, `/usr/bin/python3` that imports `requests` and `msgpack`
 * (Debian: python3-requests, python3-msgpack; `.ci/run` installs them when missing).
 */
import { execFile } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findPython, pythonCandidates } from '../python.ts'
import { DEV_KEY } from '../../sim/client.ts'
import { startWrangler, type Wrangler } from '../../sim/wrangler.ts'

const run = promisify(execFile)
const ROOT = path.resolve(import.meta.dirname, '../..')
const PACKAGE = path.join(ROOT, 'clients/python')
const dir = mkdtempSync(path.join(tmpdir(), 'stepkv-python-'))

/** The first interpreter that has the client's dependencies. */
function python(): string {
  const p = findPython('requests, msgpack')
  if (p) return p
  throw new Error(`no Python with requests and msgpack among ${pythonCandidates().join(', ')}: apt-get install python3-requests python3-msgpack (.ci/run does)`)
}

let server: Wrangler
let py: string
beforeAll(async () => {
  py = python()
  server = await startWrangler(path.join(dir, 'state'))
})
afterAll(async () => {
  await server?.kill()
  rmSync(dir, { recursive: true, force: true })
})

describe('Python client', () => {
  it('its unittest suite passes against wrangler dev, none skipped', async () => {
    const r = await run(py, ['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.', '-v'], {
      cwd: PACKAGE,
      env: { ...process.env, STEPKV_URL: server.url, STEPKV_KEY: DEV_KEY, PYTHONPATH: PACKAGE, PYTHONDONTWRITEBYTECODE: '1' },
      timeout: 180_000,
    }).catch((e: { stdout: string; stderr: string }) => {
      throw new Error(`python unittest failed:\n${e.stderr}\n${e.stdout}`)
    })
    const out = r.stderr // unittest reports on stderr
    expect(out).toMatch(/\nOK\s*$/)
    expect(out).not.toMatch(/skipped/)
    const ran = Number(/Ran (\d+) tests/.exec(out)?.[1])
    expect(ran).toBeGreaterThanOrEqual(17)
    expect(out).toContain('test_lifecycle')
  })

  it('installs from pyproject.toml with pip and imports from the install', async () => {
    const target = path.join(dir, 'site')
    // A copy: the build writes build/ and *.egg-info beside the sources, which stay untouched.
    const copy = path.join(dir, 'package')
    cpSync(PACKAGE, copy, { recursive: true, filter: (src) => !/(__pycache__|\.egg-info|\/build)$/.test(src) })
    await run(py, ['-m', 'pip', 'install', '--quiet', '--no-deps', '--no-index', '--no-build-isolation', '--target', target, copy], {
      cwd: dir,
      env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1', PYTHONDONTWRITEBYTECODE: '1' },
      timeout: 120_000,
    })
    const r = await run(py, ['-c', 'import stepkv, sys; print(stepkv.__version__, stepkv.__file__)'], { cwd: dir, env: { ...process.env, PYTHONPATH: target } })
    const [version, file] = r.stdout.trim().split(' ')
    expect(version).toBe('0.1.0')
    expect(file.startsWith(target)).toBe(true)
  })
})
