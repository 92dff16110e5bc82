#!/usr/bin/env node
// `npx stepkv …`: runs the TypeScript CLI (cli/main.ts). Node ≥ 22.18 strips types by default;
// Node 22.6–22.17 is re-run with --experimental-strip-types; older Node cannot run it.
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'cli')
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 6)) {
  process.stderr.write(`stepkv needs Node ≥ 22.12 (this is ${process.version}): run it as \`npx stepkv\` after \`npm ci\`, which installs the pinned Node 22\n`)
  process.exit(2)
}
if (process.features.typescript) {
  const { main } = await import(path.join(cli, 'main.ts'))
  process.exitCode = await main(process.argv.slice(2))
} else {
  const r = spawnSync(process.execPath, ['--experimental-strip-types', '--no-warnings=ExperimentalWarning', path.join(cli, 'run.ts'), ...process.argv.slice(2)], { stdio: 'inherit' })
  process.exit(r.status ?? 1)
}
