// The JS side of the lifecycle bench: the real @flatfile/plugin-job-handler on a real FlatfileListener.
// Copied into bench/.js/ (where npm installed the packages) and run there by `python -m bench`:
//   node lifecycle.mjs <noop|ticks> <events.json>
// FLATFILE_API_URL and FLATFILE_BEARER_TOKEN point @flatfile/api at the fake Flatfile API; they must be set
// before the plugin is imported (it builds its API client at module load).
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'

// @flatfile/api 1.23.1 sends `Keep-Alive: timeout=200` on every request, and Node's built-in fetch (undici,
// which the SDK uses on Node >= 18) refuses that header: every call fails with "fetch failed"
// (InvalidArgumentError: invalid keep-alive header) and the plugin never reaches the API. The smallest shim
// that lets it run: drop that one header. Connections are still kept alive by undici itself.
const nativeFetch = globalThis.fetch
globalThis.fetch = (url, init = {}) => {
  if (init.headers && !(init.headers instanceof Headers)) {
    const headers = { ...init.headers }
    for (const name of Object.keys(headers)) if (name.toLowerCase() === 'keep-alive') delete headers[name]
    init = { ...init, headers }
  }
  return nativeFetch(url, init)
}
const { FlatfileListener } = await import('@flatfile/listener')
const { jobHandler } = await import('@flatfile/plugin-job-handler')

const [mode, eventsPath] = process.argv.slice(2)
const events = JSON.parse(readFileSync(eventsPath, 'utf8'))
const TICKS = 10000
const tickNs = []

const listener = new FlatfileListener()
if (mode === 'noop') {
  listener.use(jobHandler('bench:noop', async () => {}))
} else {
  listener.use(jobHandler('bench:ticks', async (event, tick) => {
    const start = process.hrtime.bigint()
    for (let i = 0; i < TICKS; i++) await tick(Math.floor(i / 100))
    tickNs.push(Number(process.hrtime.bigint() - start) / TICKS)
  }))
}

const times = []
for (const event of events) {
  const started = performance.now()
  await listener.dispatchEvent(event)
  times.push(performance.now() - started)
}
process.stdout.write(JSON.stringify({ times, tickNs, node: process.version }))
