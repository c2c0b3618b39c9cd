/**
 * Settings: read from the Flatfile environment's secrets (`event.secrets(name)` of
 * @flatfile/listener 1.1.2), falling back to `process.env`.
 * @module config
 */
import { isValidSecret } from './signature.js'

/** The settings' names, identical as Flatfile secrets and as environment variables. */
export const SETTINGS = Object.freeze({
  url: 'JOBS_WEBHOOK_URL',
  secret: 'JOBS_WEBHOOK_SECRET',
  jobs: 'JOBS_FORWARD_JOBS'
})

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]'])

/**
 * @param {unknown} value
 * @returns {string|undefined} The trimmed value, or undefined when it is not a non-blank string.
 */
function clean (value) {
  return typeof value === 'string' && value.trim() ? value.trim() : undefined
}

/**
 * Read a Flatfile secret via the listener event. In @flatfile/listener 1.1.2,
 * `event.secrets(name)` GETs `/v1/secrets?environmentId&spaceId&actorId` (from the event context)
 * once per event and throws `Secret <name> not found` when absent; absence is not an error here.
 * @param {object} event - The listener's FlatfileEvent (or anything with `secrets(name)`).
 * @param {string} name
 * @returns {Promise<string|undefined>}
 */
async function readSecret (event, name) {
  if (typeof event?.secrets !== 'function') return undefined
  try {
    return clean(await event.secrets(name))
  } catch {
    return undefined
  }
}

/**
 * One setting: the Flatfile secret when set, else the environment variable.
 * @param {object} event - The listener event.
 * @param {string} name - A value of {@link SETTINGS}.
 * @param {Record<string, string|undefined>} env - Usually `process.env`.
 * @returns {Promise<string|undefined>}
 */
export async function readSetting (event, name, env) {
  return (await readSecret(event, name)) ?? clean(env?.[name])
}

/**
 * Parse `JOBS_FORWARD_JOBS`: comma-separated `domain:operation` names.
 * @param {string|undefined} value
 * @returns {string[]} Empty means every job.
 */
export function parseJobList (value) {
  return (value ?? '').split(',').map((name) => name.trim()).filter(Boolean)
}

/**
 * @param {string[]} jobs - From {@link parseJobList}.
 * @param {string|undefined} job - The event's `payload.job`.
 * @returns {boolean} Whether the job is to be forwarded.
 */
export function isJobSelected (jobs, job) {
  return jobs.length === 0 || jobs.includes(job)
}

/**
 * Why a webhook URL is unusable: it must be https (plain http only to a loopback host).
 * @param {string} url
 * @returns {string|null} The problem, or null when the URL is fine.
 */
export function urlProblem (url) {
  let parsed
  try {
    parsed = new URL(url)
  } catch {
    return `${SETTINGS.url} is not a valid URL`
  }
  if (parsed.protocol === 'https:') return null
  if (parsed.protocol === 'http:' && LOOPBACK.has(parsed.hostname)) return null
  return `${SETTINGS.url} must be an https:// URL`
}

/** @param {string} name */
const notSet = (name) => `${name} is not set (neither as a Flatfile secret nor as an environment variable)`

/**
 * Read and check the URL and the signing secret.
 * @param {object} event - The listener event.
 * @param {Record<string, string|undefined>} env
 * @returns {Promise<{url?: string, secret?: string, problems: string[]}>} `problems` name each
 *   missing or invalid setting (never its value).
 */
export async function loadConfig (event, env) {
  const url = await readSetting(event, SETTINGS.url, env)
  const secret = await readSetting(event, SETTINGS.secret, env)
  const problems = []
  if (!url) problems.push(notSet(SETTINGS.url))
  else if (urlProblem(url)) problems.push(urlProblem(url))
  if (!secret) problems.push(notSet(SETTINGS.secret))
  else if (!isValidSecret(secret)) problems.push(`${SETTINGS.secret} is not "whsec_" followed by base64`)
  return { url, secret, problems }
}
