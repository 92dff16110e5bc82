/**
 * @module The Worker entry: the Hono app as the fetch handler, and the Durable Object class.
 */
import { app } from './app.ts'

export { SessionObject } from './session-object.ts'
export { TenantObject } from './tenant-object.ts'
export { app }
export default app
