/**
 * @module The stepkv TypeScript client (`import { StepkvClient } from 'stepkv/client'`): a typed
 * client with msgpack or JSON bodies, per-attempt timeouts and retries that resend a step with the
 * same seq; typed problem exceptions; a fixed-rate control loop that reports deadline misses.
 */
export { StepkvClient, Session, logitsOf, retryWait, MSGPACK, MEMORY_TYPE, type ClientOptions, type RetryMode } from './client.ts'
export {
  StepkvClientError,
  StepkvProblem,
  InvalidRequest,
  Unauthorized,
  NotFound,
  Conflict,
  PreconditionFailed,
  TooLarge,
  Unprocessable,
  RateLimited,
  ServerError,
  StepkvTimeout,
  StepkvNetworkError,
  problemError,
  type Problem,
} from './errors.ts'
export { SocketSession } from './socket.ts'
export { runControlLoop, realClock, type Clock, type ControlLoopOptions, type ControlLoopStats, type TickCommand } from './control-loop.ts'
export type * from './types.ts'
