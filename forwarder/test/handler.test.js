/**
 * The job:ready handler and the agent entry (index.js) with the real @flatfile/listener 1.1.2:
 * secrets, env fallback, job filter, missing config, and no token leaks.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { FlatfileListener } from '@flatfile/listener'
import agent from '../index.js'
import { createJobReadyHandler } from '../src/handler.js'
import { sign } from '../src/signature.js'
import { captureConsole, jobReadyEvent, recordingLogger, reply, SECRET, startServer, TOKEN } from '../testing/harness.js'

const KEY_TEXT = SECRET.slice('whsec_'.length)
let consoleCapture
const loggers = []

before(() => {
  // The listener reads these at construction; none may come from the machine running the tests.
  for (const name of ['AGENT_INTERNAL_URL', 'FLATFILE_BEARER_TOKEN', 'JOBS_WEBHOOK_URL', 'JOBS_WEBHOOK_SECRET', 'JOBS_FORWARD_JOBS']) {
    delete process.env[name]
  }
  consoleCapture = captureConsole()
})

after(() => {
  consoleCapture.restore()
  const logs = [consoleCapture.text(), ...loggers.flatMap((l) => [...l.logs, ...l.errors])].join('\n')
  assert.ok(logs.length > 0)
  assert.ok(!logs.includes(KEY_TEXT), 'the webhook secret appeared in a log')
  assert.ok(!logs.includes(TOKEN), 'the access token appeared in a log')
})

/** A logger whose lines are also checked for leaks at the end of the file. */
function logger () {
  const l = recordingLogger()
  loggers.push(l)
  return l
}

/**
 * A stand-in for the Flatfile API (GET /v1/secrets, serving `server.secrets`) and the webhook
 * receiver (POST /hook answers 202).
 * @param {Record<string, string>} [secrets] - Flatfile secrets to serve (mutable via `server.secrets`).
 */
async function flatfileAndReceiver (secrets = {}) {
  const server = await startServer((req, res) => {
    if (req.method === 'GET' && req.url.startsWith('/v1/secrets?')) {
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return reply(res, 401)
      const data = Object.entries(server.secrets).map(([name, value]) => ({ id: `us_sec_${name}`, name, value }))
      res.writeHead(200, { 'content-type': 'application/json' })
      return res.end(JSON.stringify({ data }))
    }
    reply(res, req.url === '/hook' ? 202 : 404)
  })
  server.secrets = secrets
  server.posts = () => server.requests.filter((r) => r.method === 'POST')
  return server
}

/**
 * The agent (index.js) on a real FlatfileListener whose API is `server`.
 * @param {{url: string}} server
 * @param {string} [token]
 */
function realListener (server, token = TOKEN) {
  const listener = FlatfileListener.create(agent)
  listener.setVariables({ accessToken: token, apiUrl: `${server.url}/` })
  return listener
}

/** A listener-like wrapper: raw event under `src`, the agent's token beside it. */
function wrapper (src, secrets = {}) {
  return {
    src,
    _accessToken: TOKEN,
    topic: src.topic,
    payload: src.payload,
    secrets: async (name) => {
      if (!(name in secrets)) throw new Error(`Secret ${name} not found`)
      return secrets[name]
    }
  }
}

test('index.js on the real FlatfileListener: reads the Flatfile secrets, posts the signed raw event', async (t) => {
  const server = await flatfileAndReceiver()
  t.after(server.close)
  server.secrets = { JOBS_WEBHOOK_URL: `${server.url}/hook`, JOBS_WEBHOOK_SECRET: SECRET }
  const raw = jobReadyEvent()
  await realListener(server).dispatchEvent({ ...raw, _accessToken: TOKEN })

  const secretCalls = server.requests.filter((r) => r.method === 'GET')
  assert.equal(secretCalls.length, 1, 'one secrets call per event (the listener caches it per event)')
  const { environmentId, spaceId, actorId } = raw.context
  assert.equal(secretCalls[0].url, `/v1/secrets?environmentId=${environmentId}&spaceId=${spaceId}&actorId=${actorId}`)
  const [post] = server.posts()
  assert.ok(post, 'the event was posted to JOBS_WEBHOOK_URL')
  const text = post.body.toString('utf8')
  assert.deepEqual(JSON.parse(text), raw, 'exactly the raw event, nothing of the listener wrapper')
  assert.ok(!text.includes('_accessToken') && !text.includes(TOKEN))
  assert.equal(post.headers['webhook-id'], raw.id)
  assert.equal(post.headers['webhook-signature'], sign(SECRET, raw.id, post.headers['webhook-timestamp'], post.body))
})

test('index.js on the real FlatfileListener: a split job\'s job:parts-completed is forwarded too', async (t) => {
  const server = await flatfileAndReceiver()
  t.after(server.close)
  server.secrets = { JOBS_WEBHOOK_URL: `${server.url}/hook`, JOBS_WEBHOOK_SECRET: SECRET }
  const raw = { ...jobReadyEvent(), topic: 'job:parts-completed' }
  await realListener(server).dispatchEvent({ ...raw, _accessToken: TOKEN })
  const [post] = server.posts()
  assert.ok(post, 'the event was posted to JOBS_WEBHOOK_URL')
  assert.deepEqual(JSON.parse(post.body.toString('utf8')), raw)
})

test('index.js on the real FlatfileListener: other topics are ignored', async (t) => {
  const server = await flatfileAndReceiver()
  t.after(server.close)
  await realListener(server).dispatchEvent({ ...jobReadyEvent(), topic: 'job:completed' })
  assert.equal(server.requests.length, 0)
})

test('index.js with the secrets API refusing the token and no env: one line naming both settings', async (t) => {
  const server = await flatfileAndReceiver()
  t.after(server.close)
  const before = consoleCapture.lines.length
  await realListener(server, `${TOKEN}_wrong`).dispatchEvent(jobReadyEvent())
  assert.equal(server.posts().length, 0)
  const ours = consoleCapture.lines.slice(before).filter((line) => line.startsWith('[flatfile-jobs-forwarder]'))
  assert.equal(ours.length, 1)
  assert.match(ours[0], /not forwarded: JOBS_WEBHOOK_URL is not set .*; JOBS_WEBHOOK_SECRET is not set/)
})

test('no token leaks: _accessToken in the raw event (at any depth) and on the wrapper', async (t) => {
  const server = await flatfileAndReceiver()
  t.after(server.close)
  const raw = jobReadyEvent()
  const src = { ...raw, _accessToken: TOKEN, payload: { ...raw.payload, input: { _accessToken: TOKEN, keep: 1 } } }
  const env = { JOBS_WEBHOOK_URL: `${server.url}/hook`, JOBS_WEBHOOK_SECRET: SECRET }
  const result = await createJobReadyHandler({ env, logger: logger() })(wrapper(src))
  assert.equal(result.ok, true)
  const text = server.posts()[0].body.toString('utf8')
  assert.ok(!text.includes('_accessToken'))
  assert.ok(!text.includes(TOKEN))
  assert.deepEqual(JSON.parse(text).payload.input, { keep: 1 })
  assert.deepEqual(JSON.parse(text).context, raw.context)
})

test('a token hidden under another key stops the delivery', async (t) => {
  const server = await flatfileAndReceiver()
  t.after(server.close)
  const src = { ...jobReadyEvent(), target: `Bearer ${TOKEN}` }
  const log = logger()
  const env = { JOBS_WEBHOOK_URL: `${server.url}/hook`, JOBS_WEBHOOK_SECRET: SECRET }
  assert.equal(await createJobReadyHandler({ env, logger: log })(wrapper(src)), null)
  assert.equal(server.requests.length, 0)
  assert.deepEqual(log.errors, [`[flatfile-jobs-forwarder] event ${src.id} not forwarded: the event contains the agent's access token`])
})

test('env fallback; a Flatfile secret wins over the environment variable', async (t) => {
  const server = await flatfileAndReceiver()
  t.after(server.close)
  const env = { JOBS_WEBHOOK_URL: `${server.url}/wrong`, JOBS_WEBHOOK_SECRET: SECRET }
  const handler = createJobReadyHandler({ env, logger: logger() })
  await handler(wrapper(jobReadyEvent(), { JOBS_WEBHOOK_URL: ` ${server.url}/hook\n` }))
  await handler(wrapper(jobReadyEvent(), {}))
  assert.deepEqual(server.posts().map((r) => r.url), ['/hook', '/wrong'])
})

for (const missing of ['JOBS_WEBHOOK_URL', 'JOBS_WEBHOOK_SECRET']) {
  test(`missing ${missing}: one log line naming it, no request, no throw`, async (t) => {
    const server = await flatfileAndReceiver()
    t.after(server.close)
    const env = { JOBS_WEBHOOK_URL: `${server.url}/hook`, JOBS_WEBHOOK_SECRET: SECRET, [missing]: '  ' }
    const log = logger()
    assert.equal(await createJobReadyHandler({ env, logger: log })(wrapper(jobReadyEvent())), null)
    assert.equal(server.requests.length, 0)
    assert.equal(log.errors.length, 1)
    assert.equal(log.errors[0], `[flatfile-jobs-forwarder] event ${jobReadyEvent().id} not forwarded: ${missing} is not set (neither as a Flatfile secret nor as an environment variable)`)
    assert.deepEqual(log.logs, [])
  })
}

test('both missing: still one line, naming both', async () => {
  const log = logger()
  await createJobReadyHandler({ env: {}, logger: log })(wrapper(jobReadyEvent()))
  assert.equal(log.errors.length, 1)
  assert.match(log.errors[0], /JOBS_WEBHOOK_URL is not set.*; JOBS_WEBHOOK_SECRET is not set/)
})

test('invalid settings are named, never echoed: plain-http non-loopback URL, malformed secret', async () => {
  const log = logger()
  const env = { JOBS_WEBHOOK_URL: 'http://example.com/hook', JOBS_WEBHOOK_SECRET: 'whsec_secret value!' }
  const fetch = () => assert.fail('no request may be made')
  await createJobReadyHandler({ env, logger: log, fetch })(wrapper(jobReadyEvent()))
  assert.equal(log.errors.length, 1)
  assert.match(log.errors[0], /JOBS_WEBHOOK_URL must be an https:\/\/ URL; JOBS_WEBHOOK_SECRET is not "whsec_" followed by base64/)
  assert.ok(!log.errors[0].includes('secret value!'))
})

test('JOBS_FORWARD_JOBS=space:configure forwards only that job', async (t) => {
  const server = await flatfileAndReceiver()
  t.after(server.close)
  const env = { JOBS_WEBHOOK_URL: `${server.url}/hook`, JOBS_WEBHOOK_SECRET: SECRET, JOBS_FORWARD_JOBS: 'space:configure' }
  const log = logger()
  const handler = createJobReadyHandler({ env, logger: log })
  assert.equal(await handler(wrapper(jobReadyEvent({ job: 'workbook:submitAction' }))), null)
  assert.equal(await handler(wrapper(jobReadyEvent({ job: 'sheet:configure' }))), null)
  assert.equal(server.requests.length, 0)
  assert.deepEqual(log.errors, [])
  assert.equal((await handler(wrapper(jobReadyEvent({ job: 'space:configure' })))).ok, true)
  assert.equal(JSON.parse(server.posts()[0].body).payload.job, 'space:configure')
})

test('JOBS_FORWARD_JOBS as a Flatfile secret, a comma-separated list; filters on payload.job, not domain', async (t) => {
  const server = await flatfileAndReceiver()
  t.after(server.close)
  const env = { JOBS_WEBHOOK_URL: `${server.url}/hook`, JOBS_WEBHOOK_SECRET: SECRET, JOBS_FORWARD_JOBS: 'job:ready' }
  const handler = createJobReadyHandler({ env, logger: logger() })
  const secrets = { JOBS_FORWARD_JOBS: ' space:configure , workbook:submitAction ,' }
  for (const job of ['space:configure', 'workbook:submitAction', 'workbook:other', 'job']) {
    await handler(wrapper(jobReadyEvent({ job }), secrets))
  }
  assert.deepEqual(server.posts().map((r) => JSON.parse(r.body).payload.job), ['space:configure', 'workbook:submitAction'])
})

test('an event without a raw src (or id) is not forwarded, and nothing throws', async () => {
  const log = logger()
  const env = { JOBS_WEBHOOK_URL: 'https://example.invalid/hook', JOBS_WEBHOOK_SECRET: SECRET }
  const fetch = () => assert.fail('no request may be made')
  const handler = createJobReadyHandler({ env, logger: log, fetch })
  assert.equal(await handler({ ...jobReadyEvent(), _accessToken: TOKEN }), null)
  assert.equal(await handler({ src: { ...jobReadyEvent(), id: undefined } }), null)
  assert.equal(await handler(undefined), null)
  assert.equal(log.errors.length, 3)
  assert.match(log.errors[0], /not forwarded: the listener event has no raw event/)
})

test('a secrets lookup that throws falls back to the environment', async (t) => {
  const server = await flatfileAndReceiver()
  t.after(server.close)
  const env = { JOBS_WEBHOOK_URL: `${server.url}/hook`, JOBS_WEBHOOK_SECRET: SECRET }
  const event = { src: jobReadyEvent(), secrets: () => { throw new Error(`boom ${TOKEN}`) } }
  assert.equal((await createJobReadyHandler({ env, logger: logger() })(event)).ok, true)
})

const UNSENDABLE_IDS = {
  'CR/LF (log and header injection)': 'us_evt_1\r\n[flatfile-jobs-forwarder] event us_evt_2 delivered',
  'non-Latin-1': 'us_evt_日本',
  'Latin-1 but not ASCII': 'us_evt_café',
  'a space': 'us_evt_1 2',
  'NUL': 'us_evt_\u0000',
  'too long': `us_evt_${'x'.repeat(300)}`,
  'a number': 12345
}

for (const [name, id] of Object.entries(UNSENDABLE_IDS)) {
  test(`an event id with ${name} is refused once, without a request, and logged escaped`, async (t) => {
    const server = await flatfileAndReceiver()
    t.after(server.close)
    const env = { JOBS_WEBHOOK_URL: `${server.url}/hook`, JOBS_WEBHOOK_SECRET: SECRET }
    const log = logger()
    const sleeps = []
    const handler = createJobReadyHandler({ env, logger: log, sleep: async (ms) => { sleeps.push(ms) } })
    assert.equal(await handler(wrapper({ ...jobReadyEvent(), id })), null)
    assert.equal(server.requests.length, 0, 'no request was attempted')
    assert.deepEqual(sleeps, [], 'nothing was retried')
    assert.equal(log.errors.length, 1)
    assert.match(log.errors[0], /not forwarded: the event id is not 1-256 printable ASCII characters/)
    assert.match(log.errors[0], /^[\x20-\x7e]*$/, 'the log line is one line of printable ASCII')
    if (String(id).includes('\n')) assert.ok(log.errors[0].includes('us_evt_1\\u000d\\u000a[flatfile-jobs'))
    assert.deepEqual(log.logs, [])
  })
}

test('an event id at the limits of what is sendable is forwarded', async (t) => {
  const server = await flatfileAndReceiver()
  t.after(server.close)
  const env = { JOBS_WEBHOOK_URL: `${server.url}/hook`, JOBS_WEBHOOK_SECRET: SECRET }
  const id = `us_evt_${'~!'.repeat(124)}`.slice(0, 256)
  const result = await createJobReadyHandler({ env, logger: logger() })(wrapper({ ...jobReadyEvent(), id }))
  assert.equal(result.ok, true)
  assert.equal(server.posts()[0].headers['webhook-id'], id)
})
