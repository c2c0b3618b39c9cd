/**
 * Flatfile agent entry (`npx flatfile deploy`): forward every `job:ready` event, and the
 * `job:parts-completed` event of a split (multi-part) job — the raw event, signed per Standard
 * Webhooks — to JOBS_WEBHOOK_URL. See README.md.
 */
import { createJobReadyHandler } from './src/handler.js'

/**
 * @param {import('@flatfile/listener').FlatfileListener} listener
 */
export default function (listener) {
  listener.on(['job:ready', 'job:parts-completed'], createJobReadyHandler())
}
