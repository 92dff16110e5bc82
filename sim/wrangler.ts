/**
 * @module Starts and stops `wrangler dev` for end-to-end tests and the demo: local mode, on
 * 127.0.0.1, with Durable Object storage persisted on disk (`--persist-to`), so a restart keeps it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import path from 'node:path'

const require = createRequire(import.meta.url)
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}

export interface Wrangler {
  url: string
  /** Output so far (stdout + stderr), for failure messages. */
  log(): string
  /** Kills wrangler and workerd (SIGKILL: no graceful flush) and waits for the exit. */
  kill(): Promise<void>
}

/**
 * Spawns `node …args` from the repository root in its own process group and resolves when
 * `GET /healthz` on `port` answers 200 (wrangler dev, the GPU host).
 * @param name what the error messages call it
 * @throws Error with its output when it exits or does not come up within `timeoutMs`
 */
export async function startNodeServer(
  args: string[],
  port: number,
  o: { name: string; env?: Record<string, string>; timeoutMs: number; pollMs: number },
): Promise<Wrangler> {
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } })
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + o.timeoutMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${o.name} exited (${child.exitCode}):\n${output}`)
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) break
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      process.kill(-child.pid!, 'SIGKILL')
      throw new Error(`${o.name} did not come up in ${o.timeoutMs} ms:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, o.pollMs))
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

/**
 * Starts `wrangler dev` and resolves when `GET /healthz` answers 200.
 * @param persistTo directory for local Durable Object storage (kept across restarts)
 * @param vars Worker vars set with `--var NAME:VALUE` (e.g. `GPU_HOST_URL`)
 * @throws Error with wrangler's output when it does not come up within `timeoutMs`
 */
export async function startWrangler(persistTo: string, timeoutMs = 120_000, vars: Record<string, string> = {}): Promise<Wrangler> {
  const port = await freePort()
  const bin = path.join(path.dirname(require.resolve('wrangler/package.json')), 'bin/wrangler.js')
  const args = [bin, 'dev', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', persistTo, '--inspector-port', String(await freePort()), '--show-interactive-dev-session=false']
  for (const [k, v] of Object.entries(vars)) args.push('--var', `${k}:${v}`)
  return startNodeServer(args, port, { name: 'wrangler dev', env: { WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1' }, timeoutMs, pollMs: 250 })
}
