import assert from 'node:assert/strict'
import test from 'node:test'
import { backoffDelay, isRetryableStatus, parseRetryAfter, retryDelay, shouldRetry } from '../src/retry.js'

const OPTIONS = { baseDelayMs: 500, maxDelayMs: 8000, maxRetryAfterMs: 30_000 }

test('retries 408, 429 and 5xx only', () => {
  for (const status of [408, 429, 500, 502, 503, 504, 599]) assert.equal(isRetryableStatus(status), true, String(status))
  for (const status of [200, 202, 301, 302, 400, 401, 403, 404, 409, 413, 422, 600]) assert.equal(isRetryableStatus(status), false, String(status))
})

test('shouldRetry stops on success, on a final failure and at the attempt limit', () => {
  assert.equal(shouldRetry({ ok: false, retryable: true }, 1, 5), true)
  assert.equal(shouldRetry({ ok: false, retryable: true }, 5, 5), false)
  assert.equal(shouldRetry({ ok: false, retryable: false }, 1, 5), false)
  assert.equal(shouldRetry({ ok: true, retryable: false }, 1, 5), false)
})

test('full-jitter backoff: ceiling doubles from the base and stops at the cap', () => {
  const top = { ...OPTIONS, random: () => 1 } // out of contract, but shows the ceiling itself
  assert.deepEqual([1, 2, 3, 4, 5, 6, 10].map((n) => backoffDelay(n, top)), [500, 1000, 2000, 4000, 8000, 8000, 8000])
  const high = { ...OPTIONS, random: () => 0.999999 }
  for (let n = 1; n <= 10; n++) assert.ok(backoffDelay(n, high) < 8000)
  assert.equal(backoffDelay(3, { ...OPTIONS, random: () => 0 }), 0)
  assert.equal(backoffDelay(3, { ...OPTIONS, random: () => 0.5 }), 1000)
})

test('Retry-After: delta-seconds, HTTP date, garbage', () => {
  const now = Date.parse('2026-01-15T10:00:00Z')
  assert.equal(parseRetryAfter('1', now), 1000)
  assert.equal(parseRetryAfter(' 120 ', now), 120_000)
  assert.equal(parseRetryAfter('Thu, 15 Jan 2026 10:00:05 GMT', now), 5000)
  assert.equal(parseRetryAfter('Thu, 15 Jan 2026 09:00:00 GMT', now), 0)
  assert.equal(parseRetryAfter('soon', now), null)
  assert.equal(parseRetryAfter('-3', now), null)
  assert.equal(parseRetryAfter('2026', now), 2_026_000)
  assert.equal(parseRetryAfter('Sunday, 15-Jan-26 10:00:02 GMT', now), 2000)
  assert.equal(parseRetryAfter('', now), null)
  assert.equal(parseRetryAfter(null, now), null)
})

test('retryDelay honours Retry-After (capped) and otherwise backs off', () => {
  const opts = { ...OPTIONS, random: () => 0.5 }
  assert.equal(retryDelay(1, 1000, opts), 1000)
  assert.equal(retryDelay(1, 3_600_000, opts), 30_000)
  assert.equal(retryDelay(2, null, opts), 500)
})
