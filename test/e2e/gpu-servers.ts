/**
 * @module Starts a GPU host (`gpu/host.ts`, wasm backend) and `wrangler dev` configured to forward
 * GPU sessions to it, for the forwarding end-to-end test (both through `sim/wrangler.ts`).
 */
import { startNodeServer, startWrangler, type Wrangler } from '../../sim/wrangler.ts'

/** A child server: its URL, output so far, and a SIGKILL that waits for the exit. */
export type Child = Wrangler

/** Starts `npm run gpu-host`'s entry on `port` (wasm), durable copies in `durableDir`. */
export function startGpuHost(port: number, durableDir: string, secret: string, extra: string[] = []): Promise<Child> {
  const args = ['--experimental-strip-types', '--no-warnings', 'gpu/host.ts', '--port', String(port), '--backend', 'wasm', '--durable-dir', durableDir, ...extra]
  return startNodeServer(args, port, { name: args.join(' '), env: { GPU_HOST_SECRET: secret }, timeoutMs: 60_000, pollMs: 200 })
}

/** Starts `wrangler dev` with Durable Object storage in `persistTo` and `vars` set by `--var`. */
export function startWranglerWith(persistTo: string, vars: Record<string, string>): Promise<Child> {
  return startWrangler(persistTo, 120_000, vars)
}
