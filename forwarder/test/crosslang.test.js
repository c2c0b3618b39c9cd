/**
 * Cross-language check: what the forwarder sends is accepted by the Python receiver's own
 * verifier (flatfile_jobs.webhook.verify), byte for byte.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createJobReadyHandler } from '../src/handler.js'
import { jobReadyEvent, pythonPath, pythonVerify, recordingLogger, reply, SECRET, startServer } from '../testing/harness.js'

/** Deliver a realistic job:ready event through the handler; return what the server received. */
async function deliver () {
  const server = await startServer((req, res) => reply(res, 202))
  try {
    const event = { src: jobReadyEvent(), secrets: async () => { throw new Error('not found') } }
    const env = { JOBS_WEBHOOK_URL: `${server.url}/webhook`, JOBS_WEBHOOK_SECRET: SECRET }
    const result = await createJobReadyHandler({ env, logger: recordingLogger() })(event)
    assert.equal(result.ok, true)
    assert.equal(server.requests.length, 1)
    return server.requests[0]
  } finally {
    await server.close()
  }
}

test(`the Python receiver verifies the delivery (python: ${pythonPath()})`, async () => {
  const rec = await deliver()
  const { code, stdout, stderr } = await pythonVerify({ secret: SECRET, body: rec.body, headers: rec.headers })
  assert.equal(code, 0, `python verify failed (exit ${code}):\n${stderr}`)
  assert.equal(stdout, jobReadyEvent().id)
  assert.deepEqual(JSON.parse(rec.body.toString('utf8')), jobReadyEvent(), 'the body is the raw event')
})

test('the Python receiver rejects a tampered body and a wrong secret', async () => {
  const rec = await deliver()
  const tampered = Buffer.from(rec.body.toString('utf8').replace('workbook:submitAction', 'workbook:submitActiOn'))
  assert.notDeepEqual(tampered, rec.body)
  const bad = await pythonVerify({ secret: SECRET, body: tampered, headers: rec.headers })
  assert.equal(bad.code, 3, `expected WebhookVerificationError (exit 3), got exit ${bad.code}:\n${bad.stderr}`)
  assert.match(bad.stderr, /WebhookVerificationError: no matching webhook signature/)
  const other = await pythonVerify({ secret: 'whsec_' + Buffer.alloc(24, 7).toString('base64'), body: rec.body, headers: rec.headers })
  assert.equal(other.code, 3, other.stderr)
})
