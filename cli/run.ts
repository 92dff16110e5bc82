/** @module Entry for `node --experimental-strip-types cli/run.ts …` (bin/stepkv.js on an older Node 22). */
import { main } from './main.ts'

process.exitCode = await main(process.argv.slice(2))
