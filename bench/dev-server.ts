/**
 * @module Starts `wrangler dev` for a bench: the stepkv Worker itself (the root `wrangler.toml`,
 * with on-disk Durable Object storage) or the bench worker (`bench/workerd/wrangler.toml`), on
 * 127.0.0.1 at a free port. The Worker is bundled once into a temporary folder (`wrangler deploy
 * --dry-run --outdir`) and served from there with `no_bundle`: `wrangler dev` reloads the Worker
 * whenever a source file changes, which in a shared working tree aborts in-flight bench requests
 * (503) and would mix code versions within one run.
 */
import { spawn, execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { freePort } from '../sim/wrangler.ts'

const require = createRequire(import.meta.url)
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const WRANGLER = path.join(path.dirname(require.resolve('wrangler/package.json')), 'bin/wrangler.js')
const QUIET = { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1' }

/** A running `wrangler dev`. */
export interface DevServer {
  url: string
  /** The last `chars` characters of wrangler's and workerd's output (for failure messages). */
  log(chars?: number): string
  /** Stops wrangler and its workerd (the process group this call started), waits for the exit and
   * removes the bundle folder. */
  stop(): Promise<void>
}

/**
 * Bundles the Worker of `config` into a new temporary folder with a `wrangler.toml` that serves
 * the bundle as is (`no_bundle`, module rules for the .js, .wasm and .onnx files), the same
 * bindings, vars and migrations, and the config's `.dev.vars` beside it.
 * @param config wrangler config path relative to the repository root
 * @returns the folder
 * @throws Error with wrangler's output if bundling fails
 */
export function bundleWorker(config: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'stepkv-bundle-'))
  try {
    execFileSync(process.execPath, [WRANGLER, 'deploy', '--dry-run', '--outdir', dir, '--config', config], { cwd: ROOT, env: QUIET, stdio: 'pipe' })
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`bundling ${config} failed: ${String((e as { stderr?: Buffer }).stderr ?? e).slice(-2000)}`)
  }
  const entry = readdirSync(dir).find((f) => f.endsWith('.js'))
  const source = readFileSync(path.join(ROOT, config), 'utf8')
  if (!entry) throw new Error(`bundling ${config} wrote no .js module`)
  const toml = bundledToml(source, entry, path.join(ROOT, path.dirname(config)))
  writeFileSync(path.join(dir, 'wrangler.toml'), toml)
  const vars = path.join(ROOT, path.dirname(config), '.dev.vars')
  if (existsSync(vars)) copyFileSync(vars, path.join(dir, '.dev.vars'))
  return dir
}

/**
 * The wrangler config that serves a bundle: `source` (a wrangler.toml) with `main` pointing at
 * `entry`, `no_bundle = true`, and its module rules replaced by ESModule (.js), CompiledWasm
 * (.wasm) and Data (.onnx); every other table (bindings, vars, migrations, assets) is kept, an
 * `[assets]` directory made absolute against `configDir` (the bundle folder is elsewhere).
 * @throws Error when `source` has no top-level `main = …` line
 */
export function bundledToml(source: string, entry: string, configDir?: string): string {
  if (!/^main = .*$/m.test(source)) throw new Error("wrangler config has no 'main = …' line")
  if (configDir) source = source.replace(/^directory = "(.+)"$/m, (_, d: string) => `directory = ${JSON.stringify(path.resolve(configDir, d))}`)
  const rules = [['ESModule', '**/*.js'], ['CompiledWasm', '**/*.wasm'], ['Data', '**/*.onnx']]
  const withoutRules = source.replace(/^\[\[rules\]\]\n(?:(?!\[).*(?:\n|$))*/gm, '')
  return (
    withoutRules.replace(/^main = .*$/m, `main = "${entry}"\nno_bundle = true`).trimEnd() +
    '\n' +
    rules.map(([type, glob]) => `\n[[rules]]\ntype = "${type}"\nglobs = ["${glob}"]\n`).join('')
  )
}

/**
 * Bundles and starts `wrangler dev`; resolves once `GET /healthz` answers 200.
 * @param config wrangler config path relative to the repository root (default the stepkv Worker's)
 * @param persistTo Durable Object storage directory (the stepkv Worker; omitted for the bench worker)
 * @throws Error with wrangler's output if it exits or is not up within `timeoutMs`
 */
export async function startDev(config = 'wrangler.toml', persistTo?: string, timeoutMs = 180_000): Promise<DevServer> {
  const dir = bundleWorker(config)
  const port = await freePort()
  const args = [WRANGLER, 'dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(await freePort()), '--show-interactive-dev-session=false']
  if (persistTo) args.push('--persist-to', persistTo)
  const child = spawn(process.execPath, args, { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: QUIET })
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL')
    await exited
    rmSync(dir, { recursive: true, force: true })
  }
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) {
      await stop()
      throw new Error(`wrangler dev (${config}) exited (${child.exitCode}):\n${output.slice(-4000)}`)
    }
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) return { url, stop, log: (chars = 2000) => output.slice(-chars) }
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`wrangler dev (${config}) did not come up in ${timeoutMs} ms:\n${output.slice(-4000)}`)
    }
    await new Promise((r) => setTimeout(r, 250))
  }
}
