/**
 * `npm run gpu-host`'s command line (`gpu/host.ts`): bad flags and variables stop it before it
 * starts, with one `gpu-host: …` line on stderr naming the flag or variable, and exit status 2.
 */
import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'

/** Runs the host's entry with `args` and `env` (on top of a minimal environment). */
function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const base = ['--backend', 'wasm', '--port', '0', ...(args.includes('--durable-dir') || 'GPU_HOST_DURABLE_DIR' in env ? [] : ['--durable-dir', '/tmp/stepkv-host-cli-test'])]
    const child = spawn(process.execPath, ['--experimental-strip-types', '--no-warnings', 'gpu/host.ts', ...base, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000) // a host that started would keep running
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stderr, stdout })
    })
  })
}

describe('gpu-host command line', () => {
  it('refuses bad flag and variable combinations with one line naming them (exit 2)', async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--capture-tempo'], {}, /^gpu-host: --capture-tempo needs --capture \(or GPU_HOST_CAPTURE=1\)$/],
      [['--capture', '--fixed-capacity', '64', '--capture-tempo', '--no-capture-tempo'], {}, /^gpu-host: --capture-tempo and --no-capture-tempo contradict each other$/],
      [[], { GPU_HOST_CAPTURE_TEMPO: '1' }, /^gpu-host: GPU_HOST_CAPTURE_TEMPO=1 needs --capture/],
      [['--no-resident'], { GPU_HOST_FLOAT16_RESIDENT: '1' }, /^gpu-host: GPU_HOST_FLOAT16_RESIDENT=1 needs resident K\/V \(drop --no-resident\)$/],
      [['--float16-resident', '--no-resident'], {}, /^gpu-host: --float16-resident needs resident K\/V/],
      [[], { GPU_HOST_FLOAT16_RESIDENT: 'yes' }, /^gpu-host: GPU_HOST_FLOAT16_RESIDENT must be 1 or 0, got 'yes'$/],
      [['--float16-resident', '--no-float16-resident'], {}, /^gpu-host: --float16-resident and --no-float16-resident contradict each other$/],
      [['--resident', '--no-resident'], {}, /^gpu-host: --resident and --no-resident contradict each other$/],
      [['--capture'], {}, /^gpu-host: --capture needs --fixed-capacity N/],
      [[], { GPU_HOST_CAPTURE: '1' }, /^gpu-host: GPU_HOST_CAPTURE=1 needs --fixed-capacity N/],
      [['--fixed-capacity', '64', '--no-resident'], {}, /^gpu-host: --fixed-capacity needs resident K\/V/],
      [['--durable-dir', '/etc/passwd'], {}, /^gpu-host: --durable-dir: cannot use '\/etc\/passwd' as a directory \(EEXIST\)$/],
      [[], { GPU_HOST_DURABLE_DIR: '' }, /^gpu-host: GPU_HOST_DURABLE_DIR is empty$/],
      [['--models', '/etc/passwd'], {}, /^gpu-host: --models: no directory '\/etc\/passwd'$/],
      [['--models', '/etc'], {}, /^gpu-host: --models: no model under '\/etc' \(each model is a directory with a manifest.json\)$/],
      [[], { GPU_HOST_SECRET: 'short' }, /^gpu-host: GPU_HOST_SECRET must be at least 16 characters \(got 5\)$/],
      [['--host', 'not a host!'], { GPU_HOST_SECRET: 'abcdefghijklmnopqrstuvwxyz012345' }, /^gpu-host: --host not a host!: no such address on this machine$/],
    ]
    const results = await Promise.all(cases.map(([args, env]) => run(args, env)))
    results.forEach((r, i) => {
      const label = JSON.stringify(cases[i].slice(0, 2))
      expect(r.code, `${label}: ${r.stderr}${r.stdout}`).toBe(2)
      const lines = r.stderr.trim().split('\n')
      expect(lines, label).toHaveLength(1)
      expect(lines[0], label).toMatch(cases[i][2])
    })
  }, 60_000)
})
