/**
 * Standard Webhooks signing (https://www.standardwebhooks.com/).
 *
 * Signed content is `${id}.${timestamp}.${body}`; the key is the base64-decoded secret after its
 * `whsec_` prefix; the signature header is `v1,` + base64(HMAC-SHA256(key, content)).
 * @module signature
 */
import { createHmac } from 'node:crypto'

const PREFIX = 'whsec_'
/** Strict, padded base64 — the Python receiver decodes with `validate=True`, so accept nothing looser. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * Decode a `whsec_…` secret (the prefix is optional) into its key bytes.
 * @param {string} secret
 * @returns {Buffer} The HMAC key.
 * @throws {TypeError} When the secret is empty or not strict base64 (the message never echoes the secret).
 */
export function decodeSecret (secret) {
  const text = String(secret ?? '')
  const encoded = text.startsWith(PREFIX) ? text.slice(PREFIX.length) : text
  if (!encoded || !BASE64.test(encoded)) {
    throw new TypeError('a webhook secret must be "whsec_" followed by base64')
  }
  return Buffer.from(encoded, 'base64')
}

/**
 * @param {string} secret
 * @returns {boolean} Whether {@link decodeSecret} accepts it.
 */
export function isValidSecret (secret) {
  try {
    decodeSecret(secret)
    return true
  } catch {
    return false
  }
}

/**
 * Compute one `webhook-signature` entry.
 * @param {Buffer|string} key - Key bytes from {@link decodeSecret}, or a `whsec_…` secret.
 * @param {string} id - The `webhook-id` (the Flatfile event id).
 * @param {number|string} timestamp - Unix seconds, exactly as sent in `webhook-timestamp`.
 * @param {Buffer|string} body - The exact body bytes sent (a string is taken as UTF-8).
 * @returns {string} `v1,<base64 HMAC-SHA256>`
 */
export function sign (key, id, timestamp, body) {
  const bytes = typeof key === 'string' ? decodeSecret(key) : key
  const mac = createHmac('sha256', bytes).update(`${id}.${timestamp}.`, 'utf8').update(body)
  return `v1,${mac.digest('base64')}`
}

/**
 * The three Standard Webhooks headers for one delivery attempt.
 * @param {Buffer|string} key - Key bytes or a `whsec_…` secret.
 * @param {string} id - The `webhook-id`.
 * @param {number} timestamp - Unix seconds.
 * @param {Buffer|string} body - The exact body bytes sent.
 * @returns {{'webhook-id': string, 'webhook-timestamp': string, 'webhook-signature': string}}
 */
export function signatureHeaders (key, id, timestamp, body) {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': sign(key, id, timestamp, body)
  }
}
