/**
 * @module `npx stepkv <command>`: `serve` (wrangler dev, or the Node GPU host), `demo` and `bench`
 * (the existing scripts, options passed through), `inspect FILE` (summarize an exported memory
 * blob). Parsed with commander (README, Dependencies and why). Exit codes: 0 ok, 1 a delegated
 * command failed, 2 bad usage or an input the command refuses (a message, never a stack).
 */
import { spawn } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { Command, CommanderError, Option } from 'commander'
import { formatSummary, inspectBlob, InspectError } from './inspect.ts'
import { formatLatency, measureLatency } from './latency.ts'

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const require = createRequire(import.meta.url)
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }

/** Runs `node --experimental-strip-types script args…` from the package root with inherited stdio.
 * @returns its exit code */
function runScript(script: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return runCommand(process.execPath, ['--experimental-strip-types', path.join(ROOT, script), ...args], env)
}

function runCommand(bin: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(bin, args, { cwd: ROOT, stdio: 'inherit', env })
    const forward = (signal: NodeJS.Signals) => child.kill(signal)
    process.on('SIGINT', forward).on('SIGTERM', forward)
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward).off('SIGTERM', forward)
      resolve(code ?? (signal ? 1 : 0))
    })
    child.on('error', (e) => {
      process.stderr.write(`stepkv: cannot run ${bin}: ${e.message}\n`)
      resolve(1)
    })
  })
}

/** The CLI program (exported for tests: `program().parseAsync(argv, { from: 'user' })`). */
export function program(): Command {
  const cli = new Command('stepkv')
    .description('stepkv: edge inference with a per-session temporal KV memory')
    .version(pkg.version)
    .showHelpAfterError()
    .exitOverride()

  cli
    .command('serve')
    .description('run the API locally: `wrangler dev` (the Worker, Durable Objects in workerd), or with --gpu-host the Node GPU host (gpu/host.ts); other options are passed through')
    .option('--port <port>', 'port to listen on (default 8787; GPU host 8788)')
    .option('--ip <ip>', 'address to bind', '127.0.0.1')
    .option('--persist-to <dir>', 'wrangler dev: directory for Durable Object storage')
    .option('--gpu-host', 'run the Node GPU host (npm run gpu-host) instead of wrangler dev')
    .allowUnknownOption()
    .argument('[args...]', 'passed to wrangler dev or the GPU host')
    .action(async (extra: string[], o: { port?: string; ip: string; persistTo?: string; gpuHost?: boolean }) => {
      const port = o.port ?? (o.gpuHost ? '8788' : '8787')
      if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new CommanderError(2, 'stepkv.port', `--port must be a port number, got '${port}'`)
      if (o.gpuHost) {
        process.stderr.write(`stepkv: starting the GPU host on ${o.ip}:${port} …\n`)
        process.exitCode = await runScript('gpu/host.ts', ['--port', port, '--host', o.ip, ...extra])
        return
      }
      const wrangler = path.join(path.dirname(require.resolve('wrangler/package.json')), 'bin/wrangler.js')
      const args = ['dev', '--ip', o.ip, '--port', port, ...(o.persistTo ? ['--persist-to', o.persistTo] : []), ...extra]
      process.stderr.write(`stepkv: starting wrangler ${args.join(' ')} (the first start bundles the models: a few seconds) …\n`)
      process.exitCode = await runCommand(process.execPath, [wrangler, ...args])
    })

  cli
    .command('demo')
    .description('play the GUI and robot task suites against wrangler dev and print a table (sim/demo.ts; options: --episodes N, --suite gui|robot|all, --json FILE, --url URL, --rate HZ, --no-realtime)')
    .allowUnknownOption()
    .helpOption(false)
    .argument('[args...]', 'passed to the demo')
    .action(async (args: string[]) => {
      process.exitCode = await runScript('sim/demo.ts', args)
    })

  cli
    .command('bench')
    .description('run a benchmark suite (bench/cli.ts): fidelity, robot-fidelity, gui-fidelity, history, codec, transport, peer, load, report')
    .allowUnknownOption()
    .helpOption(false)
    .argument('[args...]', 'suite and options, passed to the bench')
    .action(async (args: string[]) => {
      process.exitCode = await runScript('bench/cli.ts', args)
    })

  cli
    .command('inspect')
    .description('summarize an exported memory blob: model, policy, layers, tokens per frame and kind, bytes, signature status')
    .argument('<file>', 'a blob from GET /v1/sessions/:id/memory')
    .option('--json', 'print the summary as JSON')
    .addOption(new Option('--secret <secret>', 'MEMORY_HMAC_SECRET of the deployment, to verify the signature').env('MEMORY_HMAC_SECRET'))
    .option('--tenant <tenant>', 'the tenant the blob was exported for (with --secret)')
    .option('-q, --quiet', 'no progress lines on stderr')
    .action(async (file: string, o: { json?: boolean; secret?: string; tenant?: string; quiet?: boolean }) => {
      let bytes: Uint8Array
      try {
        const size = statSync(file).size
        if (!o.quiet && size > 1 << 20) process.stderr.write(`stepkv: reading ${file} (${(size / 2 ** 20).toFixed(1)} MiB) …\n`)
        bytes = new Uint8Array(readFileSync(file))
      } catch (e) {
        throw new InspectError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
      }
      const secret = o.secret || undefined // an empty MEMORY_HMAC_SECRET is no secret
      const t0 = performance.now()
      const progress = o.quiet ? undefined : (stage: string) => process.stderr.write(`stepkv: ${stage} … (${Math.round(performance.now() - t0)} ms)\n`)
      if (secret !== undefined && o.tenant === undefined && !o.quiet) process.stderr.write('stepkv: --secret without --tenant: the signature is not checked\n')
      const summary = await inspectBlob(bytes, { secret, tenant: o.tenant, progress })
      process.stdout.write(o.json ? JSON.stringify(summary, null, 2) + '\n' : formatSummary(file, summary))
    })

  cli
    .command('latency')
    .description('per-step latency of the WebSocket transport vs HTTP on the same steps (starts wrangler dev unless --url)')
    .option('--url <url>', 'a running stepkv (default: start wrangler dev on loopback)')
    .addOption(new Option('--key <key>', 'API key').env('STEPKV_KEY').default('dev-key-stepkv-0000000000000000'))
    .option('--steps <n>', 'measured steps per transport', '200')
    .option('--warmup <n>', 'unmeasured steps per transport first', '10')
    .addOption(new Option('--model <model>', 'robot-carried (camera frames) or tiny-gqa (text)').choices(['robot-carried', 'tiny-gqa']).default('robot-carried'))
    .option('--json <file>', 'also write the result as JSON')
    .action(async (o: { url?: string; key: string; steps: string; warmup: string; model: 'robot-carried' | 'tiny-gqa'; json?: string }) => {
      const steps = Number(o.steps)
      const warmup = Number(o.warmup)
      if (!Number.isInteger(steps) || steps < 1 || steps > 100_000 || !Number.isInteger(warmup) || warmup < 0)
        throw new CommanderError(2, 'stepkv.usage', '--steps must be an integer in 1..100000 and --warmup ≥ 0')
      const log = (line: string) => process.stderr.write(`stepkv: ${line}\n`)
      const { startWrangler } = await import('../sim/wrangler.ts')
      const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs')
      const { tmpdir } = await import('node:os')
      let stop = async () => {}
      let url = o.url
      if (!url) {
        const dir = mkdtempSync(path.join(tmpdir(), 'stepkv-latency-'))
        log('starting wrangler dev …')
        const server = await startWrangler(dir)
        url = server.url
        stop = async () => {
          await server.kill()
          rmSync(dir, { recursive: true, force: true })
        }
      }
      try {
        log(`measuring ${steps} steps per transport on ${o.model} against ${url} …`)
        const r = await measureLatency({ url, apiKey: o.key, steps, warmup, model: o.model, progress: log })
        process.stdout.write(formatLatency(r))
        if (o.json) writeFileSync(o.json, JSON.stringify({ ...r, url: o.url ? url : 'wrangler dev (started by stepkv latency)', measuredAt: new Date().toISOString() }, null, 2) + '\n')
      } finally {
        await stop()
      }
    })

  return cli
}

/**
 * Runs the CLI on `argv` (without node and the script).
 * @returns the exit code: 0, 1 (a delegated command failed) or 2 (usage, refused input)
 */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await program().parseAsync(argv as string[], { from: 'user' })
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0
      if (e.code === 'stepkv.port' || e.code === 'stepkv.usage') process.stderr.write(`stepkv: ${e.message}\n`)
      return 2
    }
    if (e instanceof InspectError) {
      process.stderr.write(`stepkv: ${e.message}\n`)
      return 2
    }
    throw e
  }
}
