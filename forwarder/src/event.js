/**
 * The raw Flatfile event inside the listener's FlatfileEvent, and its wire form.
 * @module event
 */

/** The key under which @flatfile/listener keeps the agent's bearer token. */
export const TOKEN_KEY = '_accessToken'

/**
 * The raw event as Flatfile sent it: `event.src` of @flatfile/listener's FlatfileEvent.
 * Never the wrapper itself (it carries the agent's token).
 * @param {object} event - The listener event.
 * @returns {object|null} The raw event, or null when there is none.
 */
export function rawEvent (event) {
  const src = event?.src
  return src && typeof src === 'object' && !Array.isArray(src) ? src : null
}

/**
 * Serialize the raw event for the wire, dropping any `_accessToken` key at any depth.
 * @param {object} raw - From {@link rawEvent}.
 * @returns {string} JSON text: exactly what is signed and sent.
 */
export function serializeEvent (raw) {
  return JSON.stringify(raw, (key, value) => (key === TOKEN_KEY ? undefined : value))
}

/** What a `webhook-id` header can carry as is: 1–256 printable ASCII characters (no space, CR, LF). */
const SENDABLE_ID = /^[\x21-\x7e]{1,256}$/

/**
 * Whether `id` can be sent as the `webhook-id` header (Flatfile ids are `us_evt_…`). `fetch` throws on
 * CR/LF or non-Latin-1 header values, which would otherwise be retried as a network error.
 * @param {unknown} id
 * @returns {boolean}
 */
export function isSendableId (id) {
  return typeof id === 'string' && SENDABLE_ID.test(id)
}

/**
 * An id as it may appear in a log line: backslashes and anything but printable ASCII escaped
 * (`\uXXXX`), so an id can neither start a new log line nor fake one; cut to 128 characters.
 * @param {unknown} id
 * @returns {string}
 */
export function logId (id) {
  const text = typeof id === 'string' ? id : String(id)
  const escaped = text.slice(0, 128).replace(/[^\x20-\x7e]|\\/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return text.length > 128 ? `${escaped}...` : escaped
}

/**
 * @param {object} raw
 * @returns {string|undefined} `payload.job` (`domain:operation`); never the top-level `domain`.
 */
export function jobName (raw) {
  return raw?.payload?.job
}

/**
 * Whether the serialized body would leak the wrapper's token (belt and braces).
 * @param {string} body
 * @param {object} event - The listener event.
 * @returns {boolean}
 */
export function leaksToken (body, event) {
  const token = event?.[TOKEN_KEY]
  return typeof token === 'string' && token.length >= 8 && body.includes(token)
}
