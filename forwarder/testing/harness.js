/**
 * Shared test helpers (kept outside test/ so `node --test` does not run this file as a test):
 * a recording HTTP server on 127.0.0.1, console capture, a realistic job:ready event and the
 * Python receiver's verifier.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
/** The repository root (forwarder/..). */
export const REPO_ROOT = path.resolve(here, '..', '..')

/** The Standard Webhooks test-vector secret, used as the forwarder's secret in tests. */
export const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
/** A stand-in for the agent's bearer token; it must never reach a body or a log. */
export const TOKEN = 'sk_test_TOKEN_must_never_leak_4f1c9a'

/**
 * @typedef {object} Recorded
 * @property {string} method
 * @property {string} url
 * @property {import('node:http').IncomingHttpHeaders} headers
 * @property {Buffer} body - The exact bytes received.
 */

/**
 * Start an HTTP server on 127.0.0.1 (random port) that records every request.
 * @param {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, n: number, rec: Recorded) => void} respond
 *   Called once the body is read; `n` is the 1-based request number.
 * @returns {Promise<{url: string, requests: Recorded[], close: () => Promise<void>}>}
 */
export async function startServer (respond) {
  const requests = []
  const server = http.createServer((req, res) => {
    const chunks = []
    req.on('data', (chunk) => chunks.push(chunk))
    req.on('end', () => {
      const rec = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) }
      requests.push(rec)
      respond(req, res, requests.length, rec)
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const close = () => new Promise((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  })
  return { url: `http://127.0.0.1:${server.address().port}`, requests, close }
}

/**
 * Answer with a status (and headers), empty body.
 * @param {import('node:http').ServerResponse} res
 * @param {number} status
 * @param {Record<string, string>} [headers]
 */
export function reply (res, status, headers = {}) {
  res.writeHead(status, headers)
  res.end()
}

/**
 * Capture everything written through console.log/info/warn/error until `restore()`.
 * @returns {{lines: string[], text: () => string, restore: () => void}}
 */
export function captureConsole () {
  const lines = []
  const saved = {}
  for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
    saved[level] = console[level]
    console[level] = (...args) => lines.push(args.map(String).join(' '))
  }
  return {
    lines,
    text: () => lines.join('\n'),
    restore: () => Object.assign(console, saved)
  }
}

/**
 * A logger that records lines, for injection into the forwarder.
 * @returns {{log: Function, error: Function, logs: string[], errors: string[]}}
 */
export function recordingLogger () {
  const logs = []
  const errors = []
  return { logs, errors, log: (line) => logs.push(line), error: (line) => errors.push(line) }
}

/**
 * A realistic raw `job:ready` event, in the shape Flatfile's API stores it.
 * @param {object} [payload] - Overrides merged into `payload`.
 * @returns {object}
 */
export function jobReadyEvent (payload = {}) {
  const job = payload.job ?? 'workbook:submitAction'
  const [domain, operation] = job.split(':')
  return {
    id: 'us_evt_9dK2mQ7xLp4Rt8Zw',
    topic: 'job:ready',
    domain: 'job',
    createdAt: '2026-01-15T10:20:30.123Z',
    context: {
      accountId: 'us_acc_A1b2C3d4',
      environmentId: 'us_env_E5f6G7h8',
      spaceId: 'us_sp_I9j0K1l2',
      workbookId: 'us_wb_M3n4O5p6',
      jobId: 'us_jb_Q7r8S9t0',
      actorId: 'us_usr_U1v2W3x4'
    },
    payload: { job, domain, operation, status: 'ready', info: null, isPart: false, input: { note: 'Café ✓ — 日本' }, ...payload },
    callbackUrl: '',
    dataUrl: '',
    namespaces: ['workbook'],
    origin: { id: 'us_jb_Q7r8S9t0' },
    target: ''
  }
}

/** The interpreter of the repo's venv, or `$PYTHON`. */
export function pythonPath () {
  return process.env.PYTHON || path.join(REPO_ROOT, '.venv', 'bin', 'python')
}

const VERIFY_SCRIPT = `
import base64, json, sys
from flatfile_jobs.webhook import WebhookVerificationError, verify
data = json.load(sys.stdin)
try:
    print(verify([data["secret"]], base64.b64decode(data["body_b64"]), data["headers"]))
except WebhookVerificationError as exc:
    print(f"WebhookVerificationError: {exc}", file=sys.stderr)
    sys.exit(3)
`

/**
 * Run the Python receiver's own verifier (`flatfile_jobs.webhook.verify`) on a delivery.
 * `layers/shared` is put first on PYTHONPATH so the repository's code is what runs.
 * @param {{secret: string, body: Buffer, headers: Record<string, string>}} delivery
 * @returns {Promise<{code: number, stdout: string, stderr: string}>} Exit code 3 means
 *   WebhookVerificationError; 0 means verified and stdout is the webhook id.
 */
export function pythonVerify ({ secret, body, headers }) {
  const python = pythonPath()
  if (python.includes(path.sep) && !existsSync(python)) {
    throw new Error(`${python} does not exist: build the venv first (make test does), or set PYTHON to an interpreter`)
  }
  const shared = path.join(REPO_ROOT, 'layers', 'shared')
  const env = { ...process.env, PYTHONPATH: [shared, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter) }
  return new Promise((resolve, reject) => {
    const child = spawn(python, ['-c', VERIFY_SCRIPT], { env, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout: stdout.trim(), stderr }))
    child.stdin.end(JSON.stringify({ secret, body_b64: body.toString('base64'), headers }))
  })
}
