/**
 * @module Test-only fault injection: a Durable Object reset (`ctx.abort()`) at a named stage of a
 * step, to prove a step is atomic. Production cannot reach it: the hook lives in a module-level
 * WeakMap keyed by the object (no field, no RPC method), set only by code running inside the
 * object's isolate (the workerd tests' `runInDurableObject`), and it fires only when the
 * `STEPKV_TEST_HOOKS` var is `"1"` (`.dev.vars`, never deployed).
 */

/** The boundaries between the stages of a step (load → infer → policy → persist → reply), plus
 * one inside the persist transaction (after the memory chunks, before seq and reply). */
export const STEP_STAGES = ['before-load', 'load-infer', 'infer-policy', 'policy-persist', 'mid-persist', 'persist-reply'] as const
export type StepStage = (typeof STEP_STAGES)[number]

/** Called at every stage boundary of a step; a test's hook may `ctx.abort()` there, or first wait
 * (e.g. for `storage.sync()`) by returning a promise, which the step then awaits. */
export type FaultHook = (stage: StepStage) => void | Promise<void>

const hooks = new WeakMap<object, FaultHook>()

/** Installs (or with undefined removes) the fault hook of a Durable Object instance. */
export function setFaultHook(target: object, hook: FaultHook | undefined): void {
  if (hook) hooks.set(target, hook)
  else hooks.delete(target)
}

/** Calls `target`'s hook at `stage`, if one is installed and test hooks are enabled in `env`.
 * @returns the hook's promise, if it returned one (the caller awaits it); else undefined, so the
 *   production path gains no await */
export function faultPoint(target: object, env: { STEPKV_TEST_HOOKS?: string }, stage: StepStage): void | Promise<void> {
  const hook = hooks.get(target)
  if (hook && testHooksEnabled(env)) return hook(stage)
}

/** Whether test hooks are enabled in this environment (`STEPKV_TEST_HOOKS = "1"`). */
export function testHooksEnabled(env: { STEPKV_TEST_HOOKS?: string }): boolean {
  return env.STEPKV_TEST_HOOKS === '1'
}
