import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { forward } from '../src/forward.js'
import { sign } from '../src/signature.js'
import { captureConsole, jobReadyEvent, recordingLogger, reply, SECRET, startServer } from '../testing/harness.js'

const EVENT = jobReadyEvent()
const BODY = JSON.stringify(EVENT)
let consoleCapture

before(() => { consoleCapture = captureConsole() })
after(() => {
  consoleCapture.restore()
  assert.ok(!consoleCapture.text().includes(SECRET.slice(6)), 'the secret reached the console')
})

/**
 * forward() against `server` with a recording sleep and logger.
 * @returns {Promise<{result: object, delays: number[], logger: object}>}
 */
async function run (server, options = {}) {
  const delays = []
  const logger = recordingLogger()
  const result = await forward(BODY, {
    url: `${server.url}/hooks/flatfile`,
    secret: SECRET,
    id: EVENT.id,
    sleep: async (ms) => { delays.push(ms) },
    random: () => 0.5,
    logger,
    ...options
  })
  return { result, delays, logger }
}

/** Assert a recorded request carries a valid signature over exactly the bytes received. */
function assertSigned (rec) {
  assert.equal(rec.method, 'POST')
  assert.equal(rec.headers['content-type'], 'application/json')
  assert.equal(rec.headers['webhook-id'], EVENT.id)
  assert.match(rec.headers['webhook-timestamp'], /^\d{10}$/)
  const expected = sign(SECRET, rec.headers['webhook-id'], rec.headers['webhook-timestamp'], rec.body)
  assert.equal(rec.headers['webhook-signature'], expected)
  assert.equal(rec.body.toString('utf8'), BODY)
}

test('a 2xx on the first attempt: one signed POST of exactly the body bytes', async (t) => {
  const server = await startServer((req, res) => reply(res, 204))
  t.after(server.close)
  const { result, delays, logger } = await run(server)
  assert.deepEqual(result, { ok: true, attempts: 1, status: 204, reason: 'HTTP 204' })
  assert.equal(server.requests.length, 1)
  assertSigned(server.requests[0])
  assert.equal(server.requests[0].url, '/hooks/flatfile')
  assert.equal(server.requests[0].headers['content-length'], String(Buffer.byteLength(BODY)))
  assert.deepEqual(delays, [])
  assert.deepEqual(logger.errors, [])
  assert.match(logger.logs[0], new RegExp(`event ${EVENT.id} delivered`))
})

test('503, 503, then 202: three attempts, same webhook-id, each re-signed with a fresh timestamp', async (t) => {
  const server = await startServer((req, res, n) => reply(res, n < 3 ? 503 : 202))
  t.after(server.close)
  let clock = 1_700_000_000_000
  const { result, delays, logger } = await run(server, { now: () => (clock += 1000) })
  assert.equal(result.ok, true)
  assert.equal(result.attempts, 3)
  assert.equal(server.requests.length, 3)
  server.requests.forEach(assertSigned)
  const stamps = server.requests.map((r) => r.headers['webhook-timestamp'])
  assert.equal(new Set(stamps).size, 3, 'each attempt has its own timestamp')
  assert.equal(new Set(server.requests.map((r) => r.headers['webhook-id'])).size, 1)
  assert.deepEqual(delays, [250, 500], 'full jitter (random 0.5) of 500 and 1000 ms')
  assert.deepEqual(logger.errors, [])
})

test('429 with Retry-After: 1 waits exactly 1 s before the next attempt', async (t) => {
  const server = await startServer((req, res, n) => (n === 1 ? reply(res, 429, { 'retry-after': '1' }) : reply(res, 202)))
  t.after(server.close)
  const { result, delays } = await run(server)
  assert.equal(result.attempts, 2)
  assert.deepEqual(delays, [1000])
})

test('503 with an HTTP-date Retry-After, and a huge one capped', async (t) => {
  const now = Date.parse('2026-01-15T10:00:00Z')
  const server = await startServer((req, res, n) => {
    if (n === 1) return reply(res, 503, { 'retry-after': 'Thu, 15 Jan 2026 10:00:03 GMT' })
    if (n === 2) return reply(res, 503, { 'retry-after': '86400' })
    return reply(res, 200)
  })
  t.after(server.close)
  const { result, delays } = await run(server, { now: () => now })
  assert.equal(result.attempts, 3)
  assert.deepEqual(delays, [3000, 30_000])
})

test('400: exactly one attempt, failure logged once with the event id', async (t) => {
  const server = await startServer((req, res) => reply(res, 400))
  t.after(server.close)
  const { result, delays, logger } = await run(server)
  assert.deepEqual(result, { ok: false, attempts: 1, status: 400, reason: 'HTTP 400' })
  assert.equal(server.requests.length, 1)
  assert.deepEqual(delays, [])
  assert.equal(logger.errors.length, 1)
  assert.match(logger.errors[0], new RegExp(`event ${EVENT.id} NOT delivered after 1 attempt: HTTP 400`))
})

test('other final statuses (401, 404, 413, a redirect) are not retried', async () => {
  for (const status of [401, 404, 413, 302]) {
    const server = await startServer((req, res) => reply(res, status, { location: '/elsewhere' }))
    const { result } = await run(server)
    await server.close()
    assert.equal(result.attempts, 1, String(status))
    assert.equal(result.ok, false)
  }
})

test('a network error (socket destroyed) is retried', async (t) => {
  const server = await startServer((req, res, n) => (n === 1 ? req.socket.destroy() : reply(res, 202)))
  t.after(server.close)
  const { result, delays, logger } = await run(server)
  assert.equal(result.ok, true)
  assert.equal(result.attempts, 2)
  assert.equal(server.requests.length, 2)
  assert.equal(server.requests[0].headers['webhook-id'], server.requests[1].headers['webhook-id'])
  assert.equal(delays.length, 1)
  assert.deepEqual(logger.errors, [])
})

test('a timeout is retried', async (t) => {
  const server = await startServer((req, res, n) => { if (n > 1) reply(res, 202) }) // the first never answers
  t.after(server.close)
  const { result } = await run(server, { timeoutMs: 150 })
  assert.equal(result.ok, true)
  assert.equal(result.attempts, 2)
})

test('exhausting the attempts logs the failure once, with the event id', async (t) => {
  const server = await startServer((req, res) => reply(res, 500))
  t.after(server.close)
  const { result, delays, logger } = await run(server, { maxAttempts: 4 })
  assert.deepEqual(result, { ok: false, attempts: 4, status: 500, reason: 'HTTP 500' })
  assert.equal(server.requests.length, 4)
  assert.equal(delays.length, 3)
  assert.equal(logger.errors.length, 1)
  assert.match(logger.errors[0], new RegExp(`event ${EVENT.id} NOT delivered after 4 attempts: HTTP 500`))
  assert.ok(!logger.errors[0].includes(SECRET.slice(6)))
})

test('an unreachable server: network errors up to the default 5 attempts, then one log line', async (t) => {
  const server = await startServer((req, res) => reply(res, 200))
  const url = `${server.url}/gone`
  await server.close() // nothing listens on the port any more
  const logger = recordingLogger()
  const delays = []
  const result = await forward(BODY, { url, secret: SECRET, id: EVENT.id, logger, sleep: async (ms) => { delays.push(ms) } })
  assert.equal(result.ok, false)
  assert.equal(result.attempts, 5)
  assert.match(result.reason, /^network error \(ECONNREFUSED\)$/)
  assert.equal(delays.length, 4)
  delays.forEach((ms, i) => assert.ok(ms >= 0 && ms < Math.min(8000, 500 * 2 ** i)))
  assert.equal(logger.errors.length, 1)
  assert.match(logger.errors[0], new RegExp(EVENT.id))
})

test('forward() refuses an id that cannot be a header before any request (no retries)', async (t) => {
  const server = await startServer((req, res) => reply(res, 204))
  t.after(server.close)
  for (const id of ['us_evt_1\r\nx', 'us_evt_日本', '', undefined]) {
    await assert.rejects(run(server, { id }), (error) => {
      assert.equal(error.name, 'TypeError')
      assert.match(error.message, /^the event id [\x20-\x7e]* cannot be a webhook-id header$/)
      return true
    })
  }
  assert.equal(server.requests.length, 0)
})
