/**
 * Deliver one body to the webhook URL: signed, with a timeout per attempt and retries.
 * `fetch`, `sleep`, the clock and randomness are injectable for tests.
 * @module forward
 */
import { decodeSecret, signatureHeaders } from './signature.js'
import { isSendableId, logId } from './event.js'
import { isRetryableStatus, parseRetryAfter, retryDelay, shouldRetry } from './retry.js'

/** Log prefix of every line this agent writes. */
export const LOG_PREFIX = '[flatfile-jobs-forwarder]'
export const USER_AGENT = 'flatfile-jobs-forwarder/0.1.0'

/** Defaults: 10 s per attempt, 5 attempts, backoff 0.5 s doubling up to 8 s, Retry-After capped at 30 s. */
export const DEFAULTS = Object.freeze({
  timeoutMs: 10_000,
  maxAttempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 30_000
})

/**
 * @typedef {object} ForwardOptions
 * @property {string} url - Where to POST.
 * @property {string} secret - `whsec_…` signing secret.
 * @property {string} id - The `webhook-id`: the Flatfile event id (the receiver's dedupe key).
 * @property {number} [timeoutMs] - Per-attempt timeout.
 * @property {number} [maxAttempts] - Attempts in all, including the first.
 * @property {number} [baseDelayMs] - See {@link module:retry.backoffDelay}.
 * @property {number} [maxDelayMs] - See {@link module:retry.backoffDelay}.
 * @property {number} [maxRetryAfterMs] - Cap on a server-imposed wait.
 * @property {typeof fetch} [fetch] - Defaults to the global `fetch`.
 * @property {(ms: number) => Promise<void>} [sleep] - Defaults to a timer.
 * @property {() => number} [now] - Ms since the epoch; defaults to `Date.now`.
 * @property {() => number} [random] - Defaults to `Math.random`.
 * @property {{log: Function, error: Function}} [logger] - Defaults to `console`.
 */

/**
 * @typedef {object} ForwardResult
 * @property {boolean} ok - A 2xx response arrived.
 * @property {number} attempts - Attempts made.
 * @property {number} [status] - Last HTTP status, when a response arrived.
 * @property {string} reason - Short description of the last outcome (no secrets, no URL).
 */

/** @param {number} ms */
const defaultSleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * POST `body` to `options.url`, retrying transient failures.
 * Each attempt is re-signed with a fresh timestamp and the same `webhook-id`.
 * A final failure is logged once with the event id; delivery failures never throw.
 * @param {string} body - JSON text; sent (and signed) as exactly these UTF-8 bytes.
 * @param {ForwardOptions} options
 * @returns {Promise<ForwardResult>}
 * @throws {TypeError} Only for a malformed secret or an id that cannot be a header (see
 *   {@link module:event.isSendableId}), before any request (the handler checks both first).
 */
export async function forward (body, options) {
  const opts = { ...DEFAULTS, fetch: globalThis.fetch, sleep: defaultSleep, now: Date.now, random: Math.random, logger: console, ...options }
  if (!isSendableId(opts.id)) throw new TypeError(`the event id ${logId(opts.id)} cannot be a webhook-id header`)
  const request = { key: decodeSecret(opts.secret), bytes: Buffer.from(body, 'utf8') }
  for (let attempt = 1; ; attempt++) {
    const outcome = await attemptOnce(request, opts)
    if (!shouldRetry(outcome, attempt, opts.maxAttempts)) return report(outcome, attempt, opts)
    await opts.sleep(retryDelay(attempt, outcome.retryAfterMs, opts))
  }
}

/**
 * One signed POST with its own timeout.
 * @param {{key: Buffer, bytes: Buffer}} request
 * @param {ForwardOptions & typeof DEFAULTS} opts
 * @returns {Promise<{ok: boolean, retryable: boolean, status?: number, retryAfterMs: number|null, reason: string}>}
 */
async function attemptOnce ({ key, bytes }, opts) {
  const timestamp = Math.floor(opts.now() / 1000)
  const headers = {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    ...signatureHeaders(key, opts.id, timestamp, bytes)
  }
  try {
    const signal = AbortSignal.timeout(opts.timeoutMs)
    const response = await opts.fetch(opts.url, { method: 'POST', headers, body: bytes, redirect: 'manual', signal })
    await discardBody(response)
    return classify(response, opts.now())
  } catch (error) {
    return { ok: false, retryable: true, retryAfterMs: null, reason: describeError(error, opts.timeoutMs) }
  }
}

/**
 * Turn a response into an attempt outcome.
 * @param {Response} response
 * @param {number} nowMs
 */
function classify (response, nowMs) {
  const { status } = response
  const ok = status >= 200 && status <= 299
  const retryAfterMs = parseRetryAfter(response.headers?.get?.('retry-after'), nowMs)
  return { ok, retryable: !ok && isRetryableStatus(status), status, retryAfterMs, reason: `HTTP ${status}` }
}

/**
 * Release the connection without reading the (unused) response body.
 * @param {Response} response
 */
async function discardBody (response) {
  try {
    await response.body?.cancel()
  } catch {
    // Nothing to release.
  }
}

/**
 * A short, secret-free description of a failed attempt.
 * @param {unknown} error
 * @param {number} timeoutMs
 * @returns {string}
 */
function describeError (error, timeoutMs) {
  const name = error?.name ?? 'Error'
  if (name === 'TimeoutError' || name === 'AbortError') return `timed out after ${timeoutMs} ms`
  const code = error?.cause?.code ?? error?.code
  return code ? `network error (${code})` : `network error (${name})`
}

/**
 * Log the final outcome (failures with console.error) and build the result.
 * @param {{ok: boolean, status?: number, reason: string}} outcome
 * @param {number} attempts
 * @param {ForwardOptions} opts
 * @returns {ForwardResult}
 */
function report (outcome, attempts, opts) {
  const tries = `${attempts} attempt${attempts === 1 ? '' : 's'}`
  if (outcome.ok) {
    opts.logger.log(`${LOG_PREFIX} event ${logId(opts.id)} delivered (${outcome.reason}, ${tries})`)
  } else {
    opts.logger.error(`${LOG_PREFIX} event ${logId(opts.id)} NOT delivered after ${tries}: ${outcome.reason}`)
  }
  return { ok: outcome.ok, attempts, status: outcome.status, reason: outcome.reason }
}
