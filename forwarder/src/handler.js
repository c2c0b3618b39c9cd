/**
 * The `job:ready` callback: select, configure, serialize, forward. Never throws.
 * @module handler
 */
import { isJobSelected, loadConfig, parseJobList, readSetting, SETTINGS } from './config.js'
import { isSendableId, jobName, leaksToken, logId, rawEvent, serializeEvent } from './event.js'
import { forward, LOG_PREFIX } from './forward.js'

/**
 * @typedef {object} HandlerOptions
 * @property {Record<string, string|undefined>} [env] - Fallback settings; defaults to `process.env`.
 * @property {{log: Function, error: Function}} [logger] - Defaults to `console`.
 * Any other key (fetch, sleep, timeoutMs, maxAttempts, …) is passed to {@link module:forward.forward}.
 */

/**
 * Build the listener callback for `job:ready`.
 * @param {HandlerOptions & Partial<import('./forward.js').ForwardOptions>} [options]
 * @returns {(event: object) => Promise<import('./forward.js').ForwardResult|null>} Resolves to the
 *   delivery result, or null when the event was not sent (filtered out, misconfigured, malformed).
 */
export function createJobReadyHandler ({ env = process.env, logger = console, ...forwardOptions } = {}) {
  return async function onJobReady (event) {
    try {
      return await handle(event, { env, logger, forwardOptions })
    } catch (error) {
      logger.error(`${LOG_PREFIX} event ${logId(rawEvent(event)?.id ?? '(no id)')} not forwarded: unexpected ${logId(error?.name ?? 'error')}`)
      return null
    }
  }
}

/**
 * @param {object} event
 * @param {{env: object, logger: {log: Function, error: Function}, forwardOptions: object}} deps
 */
async function handle (event, { env, logger, forwardOptions }) {
  const raw = rawEvent(event)
  if (!raw?.id) return skip(logger, '(no id)', 'the listener event has no raw event (src) with an id')
  if (!isSendableId(raw.id)) return skip(logger, raw.id, 'the event id is not 1-256 printable ASCII characters, so it cannot be a webhook-id header')
  const jobs = parseJobList(await readSetting(event, SETTINGS.jobs, env))
  if (!isJobSelected(jobs, jobName(raw))) return null
  const { url, secret, problems } = await loadConfig(event, env)
  if (problems.length) return skip(logger, raw.id, problems.join('; '))
  const body = serializeEvent(raw)
  if (leaksToken(body, event)) return skip(logger, raw.id, "the event contains the agent's access token")
  return forward(body, { ...forwardOptions, url, secret, id: raw.id, logger })
}

/**
 * Log, on one line, why an event is not forwarded.
 * @returns {null}
 */
function skip (logger, id, why) {
  logger.error(`${LOG_PREFIX} event ${logId(id)} not forwarded: ${why}`)
  return null
}
