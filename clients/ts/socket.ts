/**
 * @module `SocketSession`: steps over the session's WebSocket (`GET /v1/sessions/:id/ws`,
 * `worker/ws.ts`): the same msgpack step request and reply as `POST …/steps`, one connection for
 * the whole loop. Replies come back in request order; a problem frame rejects its step with the
 * same typed exception as HTTP. The upgrade sends the bearer key as a header, which Node's
 * WebSocket (undici) allows and browsers do not: this transport is for Node/Deno/Bun control loops.
 * No automatic retry: after a timeout or a dropped connection, `connect` again and resend the same
 * seq (the server replays it if it ran).
 */
import { pack, unpack } from 'msgpackr'
import type { StepkvClient } from './client.ts'
import { problemError, StepkvNetworkError, StepkvTimeout, type Problem } from './errors.ts'
import type { Observation, StepOptions, StepReply } from './types.ts'

interface Pending {
  resolve(reply: StepReply): void
  reject(e: Error): void
  timer: ReturnType<typeof setTimeout>
}

function isProblem(v: unknown): v is Problem {
  const p = v as Problem
  return typeof p === 'object' && p !== null && typeof p.code === 'string' && typeof p.status === 'number' && typeof p.type === 'string'
}

/** One session's WebSocket, with its own step numbering (`seq` = the last successful step). */
export class SocketSession {
  readonly id: string
  seq: number
  private readonly ws: WebSocket
  private readonly timeoutMs: number
  private readonly pending: Pending[] = []
  private closed?: Error

  private constructor(id: string, seq: number, ws: WebSocket, timeoutMs: number) {
    this.id = id
    this.seq = seq
    this.ws = ws
    this.timeoutMs = timeoutMs
    ws.addEventListener('message', (e) => this.onFrame(e.data))
    ws.addEventListener('close', (e) => this.fail(new StepkvNetworkError(`WebSocket of ${id}`, `closed (${e.code}${e.reason ? ` ${e.reason}` : ''})`)))
    ws.addEventListener('error', () => this.fail(new StepkvNetworkError(`WebSocket of ${id}`, 'connection error')))
  }

  /**
   * Opens the WebSocket of session `id`.
   * @param seq the session's last successful step (e.g. `session.seq`); the next `step` sends seq + 1
   * @throws StepkvNetworkError when the upgrade is refused (unknown session, bad key) or fails;
   *   StepkvTimeout after the client's timeout
   */
  static connect(client: StepkvClient, id: string, seq: number): Promise<SocketSession> {
    const { baseUrl, apiKey, timeoutMs } = client.options
    const url = `${baseUrl.replace(/^http/, 'ws')}/v1/sessions/${id}/ws`
    // undici's WebSocket takes headers in its init (not in the WHATWG constructor's types).
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${apiKey}` } } as unknown as string[])
    ws.binaryType = 'arraybuffer'
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.close()
        reject(new StepkvTimeout(timeoutMs, `WebSocket upgrade of ${id}`))
      }, timeoutMs)
      ws.addEventListener('open', () => {
        clearTimeout(timer)
        resolve(new SocketSession(id, seq, ws, timeoutMs))
      }, { once: true })
      ws.addEventListener('error', () => {
        clearTimeout(timer)
        reject(new StepkvNetworkError(`WebSocket upgrade of ${id}`, 'refused or failed (unknown session, wrong key, or no server)'))
      }, { once: true })
    })
  }

  /** Sends step `seq` (no numbering). @throws as `StepkvClient.step`; StepkvTimeout closes the socket */
  send(seq: number, observation: Observation, options?: StepOptions): Promise<StepReply> {
    if (this.closed) return Promise.reject(this.closed)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // Replies are matched by order: after a lost one the order is unknown, so the socket goes.
        this.fail(new StepkvTimeout(this.timeoutMs, `step ${seq} of ${this.id} over WebSocket`))
        this.ws.close(1000, 'client timeout')
      }, this.timeoutMs)
      this.pending.push({ resolve, reject, timer })
      this.ws.send(pack({ seq, observation, ...(options && { options }) }) as Uint8Array<ArrayBuffer>)
    })
  }

  /** Runs the next step (seq + 1) and advances `seq` on success. */
  async step(observation: Observation, options?: StepOptions): Promise<StepReply> {
    const reply = await this.send(this.seq + 1, observation, options)
    this.seq = reply.seq
    return reply
  }

  /** Closes the connection (pending steps reject with StepkvNetworkError). */
  close(): void {
    this.ws.close(1000, 'done')
  }

  private onFrame(data: unknown): void {
    const p = this.pending.shift()
    if (!p) return
    clearTimeout(p.timer)
    try {
      const value = unpack(new Uint8Array(data as ArrayBuffer))
      if (isProblem(value)) p.reject(problemError(value))
      else p.resolve(value as StepReply)
    } catch (e) {
      p.reject(new StepkvNetworkError(`frame of ${this.id}`, e))
    }
  }

  private fail(e: Error): void {
    this.closed ??= e
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer)
      p.reject(e)
    }
  }
}
