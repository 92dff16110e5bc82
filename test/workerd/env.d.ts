import type { Env as StepkvEnv } from '../../worker/env.ts'

declare global {
  namespace Cloudflare {
    interface Env extends StepkvEnv {}
    interface GlobalProps {
      mainModule: typeof import('../../worker/index.ts')
    }
  }
}
