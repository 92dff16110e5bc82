/**
 * @module The Python interpreter the tests that run Python use: the first of `STEPKV_PYTHON`,
 * `python3`, `/usr/bin/python3` that can import the given modules.
 */
import { spawnSync } from 'node:child_process'

/** Interpreters tried, in order (`STEPKV_PYTHON` first when set). */
export const pythonCandidates = (): string[] =>
  [process.env.STEPKV_PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => Boolean(p))

/**
 * @param imports what `python -c "import <imports>"` must accept, e.g. `'torch, onnx'`
 * @returns the first candidate that imports them, or undefined when none does
 */
export function findPython(imports: string): string | undefined {
  return pythonCandidates().find((p) => spawnSync(p, ['-c', `import ${imports}`], { stdio: 'ignore' }).status === 0)
}
