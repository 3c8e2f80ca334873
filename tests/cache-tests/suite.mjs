// Runs the community's HTTP cache test suite (http-cache-tests, the suite behind
// cache-tests.fyi) against airlock.  Two modes:
//
//   node suite.mjs serve            the suite's own test server on 127.0.0.1, a free port;
//                                   prints "listening PORT" and serves until killed
//   node suite.mjs run AIRLOCK SERVER
//                                   the suite's client: test requests go to AIRLOCK (a
//                                   reverse proxy whose route leads to SERVER); prints one
//                                   JSON object with every test's verdict and the peers'
//
// Why not the suite's own cli.mjs and server.mjs: the server listens on every address
// (we stay on loopback), and the client sends its configuration (PUT /config/ID) and
// reads the server's record (GET /state/ID) through the cache under test.  Through
// airlock neither works: airlock forwards no client method but GET/HEAD and no client
// header, so the server could not be configured.  Those two requests are bookkeeping
// between the suite's client and its server, not requests to the cache, so here they go
// straight to the server; every test request still goes through airlock.
//
// The server tells a test's requests apart by the client's Req-Num header when it sees
// one and by their order when not (server/handle-test.mjs: cliReqNum || srvReqNum).
// airlock does not forward Req-Num, so the server numbers by order; but it also records
// the header's value (NaN) as each request's number, which the client then compares with
// its own (the retry check on Request-Numbers and checkServerRequests's not_cached
// check).  serve() therefore hands the server its own count as Req-Num when the header
// is missing: what it answers in Server-Request-Count, recorded where the client looks.
// A cache that sends a request the test did not expect, or not one it did, shifts that
// count, and the test fails, as it does with the header.

import fs from 'fs'
import http from 'http'
import path from 'path'
import { fileURLToPath } from 'url'
import fetch from 'node-fetch'

const here = path.dirname(fileURLToPath(import.meta.url))
const pkg = path.join(here, 'node_modules', 'http-cache-tests')
const load = rel => import(path.join(pkg, rel))

async function serve () {
  const handleConfig = (await load('server/handle-config.mjs')).default
  const handleState = (await load('server/handle-state.mjs')).default
  const handleTest = (await load('server/handle-test.mjs')).default
  const { stash } = await load('server/utils.mjs')
  // server/server.mjs handleMain, without the static files
  const server = http.createServer((request, response) => {
    const url = new URL(request.url, 'http://127.0.0.1/')
    const segs = url.pathname.split('/')
    segs.shift()
    const dispatch = segs.shift()
    if (dispatch === 'config') handleConfig(segs, request, response)
    else if (dispatch === 'test') {
      // the server's own count, as the client's Req-Num (see the top of this file)
      if (!('req-num' in request.headers)) {
        request.headers['req-num'] = String((stash.get(segs[0]) || []).length + 1)
      }
      handleTest(segs, request, response)
    }
    else if (dispatch === 'state') handleState(segs, request, response)
    else { response.statusCode = 404; response.end('not found\n') }
  })
  server.listen(0, '127.0.0.1', () => {
    console.log(`listening ${server.address().port}`)
  })
}

async function run (airlockBase, serverBase) {
  const config = await load('client/config.mjs')
  const { makeCacheTest } = await load('client/test.mjs')
  const { getResults } = await load('client/runner.mjs')
  const tests = (await load('tests/index.mjs')).default
  const surrogate = (await load('tests/surrogate-control.mjs')).default
  const peers = (await load('results/index.mjs')).default
  const { determineTestResult } = await load('lib/display.mjs')
  tests.push(surrogate) // as cli.mjs does

  config.setFetch((url, init) => {
    const u = new URL(url)
    const direct = u.pathname.startsWith('/config/') || u.pathname.startsWith('/state/')
    return fetch(direct ? serverBase + u.pathname + u.search : url, init)
  })
  config.setBaseUrl(airlockBase)
  config.setUseBrowserCache(false)

  // client/runner.mjs runTests, in two rounds: airlock takes an upstream that closes the
  // connection without answering as down and serves from its cache until a probe finds it
  // back (README, "Uplink down"); the suite has one origin for all its tests, so the few
  // tests whose server disconnects run after all the others instead of among them.
  const all = []
  for (const suite of tests) {
    for (const t of suite.tests) if (t.browser_only !== true) all.push(t)
  }
  const closes = t => t.requests.some(r => r.disconnect === true)
  for (const round of [all.filter(t => !closes(t)), all.filter(closes)]) {
    for (let i = 0; i < round.length; i += 100) {
      await Promise.all(round.slice(i, i + 100).map(t => bounded(t, makeCacheTest)))
    }
  }
  const results = Object.assign({}, timedOut, getResults())
  const out = { tests: [], peers: [] }
  const peerResults = []
  for (const p of peers) {
    const results = JSON.parse(fs.readFileSync(path.join(pkg, 'results', p.file), 'utf8'))
    peerResults.push({ name: p.name, type: p.type, results })
    out.peers.push({ name: p.name, type: p.type, version: p.version })
  }
  for (const suite of tests) {
    for (const t of suite.tests) {
      if (t.browser_only === true) continue
      const verdict = determineTestResult(tests, t.id, results)
      out.tests.push({
        id: t.id,
        kind: t.kind || 'required',
        verdict: verdict[2],
        detail: results[t.id] === true ? '' : (results[t.id] || ['', ''])[1],
        peers: Object.fromEntries(peerResults.map(p => [p.name, p.results[t.id] === true]))
      })
    }
  }
  // exit once written: a test left hanging must not keep the process, nor cut the output
  process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0))
}

// node-fetch 2 never settles the body of a response whose connection ends before its
// Content-Length, which is how airlock aborts a response whose upstream body turned out
// bad (a test server that sends a wrong Content-Length or Transfer-Encoding on purpose):
// such a test would hang the whole run.  It fails instead, after a bound well above the
// longest test (one pause of 3 s and a few requests).  The verdict is kept aside (the
// suite's own record throws on a second verdict, should the test still end later).
const TEST_BOUND_MS = 15000
const timedOut = {}
function bounded (t, makeCacheTest) {
  let timer
  const bound = new Promise(resolve => {
    timer = setTimeout(() => {
      timedOut[t.id] = ['Assertion', `no complete answer within ${TEST_BOUND_MS / 1000} s`]
      resolve()
    }, TEST_BOUND_MS)
  })
  return Promise.race([makeCacheTest(t).then(() => clearTimeout(timer)), bound])
}

const [mode, a, b] = process.argv.slice(2)
if (mode === 'serve') serve()
else if (mode === 'run') run(a, b)
else { console.error('usage: suite.mjs serve | run AIRLOCK_BASE SERVER_BASE'); process.exit(2) }
