/**
 * @module Starts a GPU host (`gpu/host.ts`, wasm backend) and `wrangler dev` configured to forward
 * GPU sessions to it, for the forwarding end-to-end test. Like `sim/wrangler.ts`, plus `--var`s.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import path from 'node:path'
import { freePort } from '../../sim/wrangler.ts'

const require = createRequire(import.meta.url)
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')

/** A child server: its URL, output so far, and a SIGKILL that waits for the exit. */
export interface Child {
  url: string
  log(): string
  kill(): Promise<void>
}

async function startChild(args: string[], port: number, env: Record<string, string>, timeoutMs: number): Promise<Child> {
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited (${child.exitCode}):\n${output}`)
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) break
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      process.kill(-child.pid!, 'SIGKILL')
      throw new Error(`${args.join(' ')} did not come up in ${timeoutMs} ms:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  return {
    url,
    log: () => output,
    kill: async () => {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL')
      await exited
    },
  }
}

/** Starts `npm run gpu-host`'s entry on `port` (wasm), durable copies in `durableDir`. */
export function startGpuHost(port: number, durableDir: string, secret: string, extra: string[] = []): Promise<Child> {
  const args = ['--experimental-strip-types', '--no-warnings', 'gpu/host.ts', '--port', String(port), '--backend', 'wasm', '--durable-dir', durableDir, ...extra]
  return startChild(args, port, { GPU_HOST_SECRET: secret }, 60_000)
}

/** Starts `wrangler dev` with Durable Object storage in `persistTo` and `vars` set by `--var`. */
export async function startWranglerWith(persistTo: string, vars: Record<string, string>): Promise<Child> {
  const port = await freePort()
  const bin = path.join(path.dirname(require.resolve('wrangler/package.json')), 'bin/wrangler.js')
  const args = [bin, 'dev', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', persistTo, '--inspector-port', String(await freePort()), '--show-interactive-dev-session=false']
  for (const [k, v] of Object.entries(vars)) args.push('--var', `${k}:${v}`)
  return startChild(args, port, { WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1' }, 120_000)
}
