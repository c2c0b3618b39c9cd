/**
 * Retry policy: which outcomes are retried and how long to wait before the next attempt.
 * Pure functions; randomness and the clock are passed in.
 * @module retry
 */

/**
 * @typedef {object} BackoffOptions
 * @property {number} baseDelayMs - Ceiling of the first wait (doubles each attempt).
 * @property {number} maxDelayMs - Largest ceiling of an exponential wait.
 * @property {number} maxRetryAfterMs - Largest wait a `Retry-After` header can impose.
 * @property {() => number} random - Uniform in [0, 1), e.g. `Math.random`.
 */

/**
 * Statuses worth another attempt: 408, 429 and every 5xx. Other 4xx (and 3xx) are final.
 * @param {number} status
 * @returns {boolean}
 */
export function isRetryableStatus (status) {
  return status === 408 || status === 429 || (status >= 500 && status <= 599)
}

/**
 * Whether to try again after a failed attempt.
 * @param {{ok: boolean, retryable: boolean}} outcome - The failed attempt's outcome.
 * @param {number} attempt - 1-based number of the attempt just made.
 * @param {number} maxAttempts
 * @returns {boolean}
 */
export function shouldRetry (outcome, attempt, maxAttempts) {
  return !outcome.ok && outcome.retryable && attempt < maxAttempts
}

/**
 * Full-jitter exponential backoff: uniform in [0, min(max, base × 2^(attempt−1))).
 * @param {number} attempt - 1-based number of the attempt that just failed.
 * @param {BackoffOptions} options
 * @returns {number} Milliseconds.
 */
export function backoffDelay (attempt, { baseDelayMs, maxDelayMs, random }) {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1))
  return Math.floor(random() * ceiling)
}

/**
 * Parse a `Retry-After` header: delta-seconds or an HTTP date.
 * @param {string|null|undefined} value
 * @param {number} nowMs - Current time, ms since the epoch.
 * @returns {number|null} Milliseconds to wait (never negative), or null when absent or unparsable.
 */
export function parseRetryAfter (value, nowMs) {
  const text = (value ?? '').trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  if (!/^[A-Za-z]{3,9},? /.test(text)) return null // HTTP dates start with the day name.
  const date = Date.parse(text)
  return Number.isNaN(date) ? null : Math.max(0, date - nowMs)
}

/**
 * The wait before the next attempt: the server's `Retry-After` (capped) when it sent one,
 * otherwise full-jitter backoff.
 * @param {number} attempt - 1-based number of the attempt that just failed.
 * @param {number|null} retryAfterMs - From {@link parseRetryAfter}.
 * @param {BackoffOptions} options
 * @returns {number} Milliseconds.
 */
export function retryDelay (attempt, retryAfterMs, options) {
  if (retryAfterMs == null) return backoffDelay(attempt, options)
  return Math.min(retryAfterMs, options.maxRetryAfterMs)
}
