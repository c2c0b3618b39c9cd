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
