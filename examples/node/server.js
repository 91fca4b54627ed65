'use strict';
// A storefront back end that searches Searchgate through GroupBy's published Node
// client, `groupby-api`, unchanged. The client key comes from Vault or OpenBao (never
// from a file of its own or the environment), is re-read every few minutes, and at once
// when Searchgate answers 401, after which the search is sent once more.
// See docs/integrations.md, "Web servers in other languages".
//
//   GET /search?q=TEXT&pageSize=N  -> {query, totalRecordCount, records: [{id, title}]}
//   GET /stats                     -> key reads, refreshes on a 401, searches, failures

const http = require('node:http');
const { BridgeError, BrowserBridge, Query } = require('groupby-api');
const { CachedKey, vaultReader } = require('./client-key');

function setting(name, fallback) {
  const value = process.env[name];
  if (value !== undefined && value !== '') return value;
  if (fallback === undefined) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return fallback;
}

const searchgateUrl = setting('SEARCHGATE_URL').replace(/\/+$/, '');
const system = setting('SEARCHGATE_SYSTEM', 'node-storefront');
const collection = setting('SEARCHGATE_COLLECTION', 'default');
const timeoutMs = Number(setting('SEARCHGATE_TIMEOUT_MS', '5000'));
const key = new CachedKey(vaultReader(setting('SEARCHGATE_KEY_PATH')), {
  maxAgeMs: 1000 * Number(setting('SEARCHGATE_KEY_MAX_AGE_SECONDS', '300')),
});

const counters = { searches: 0, failedSearches: 0, refreshesOn401: 0 };

// CloudBridge always calls https://CUSTOMER.groupbycloud.com; BrowserBridge takes its
// base URL from `proxyUrl`, and sends the key in the headers we give it. Searchgate
// prefers the Authorization header to the protocol's `clientKey` body field, since
// proxies log bodies. One bridge per key, since the headers hold the key.
let bridge = { generation: 0, instance: null };
function bridgeFor(held) {
  if (bridge.generation !== held.generation) {
    const instance = new BrowserBridge('searchgate', false, {
      proxyUrl: `${searchgateUrl}/api/v1`,
      timeout: timeoutMs,
    });
    instance.headers = {
      Authorization: `Bearer ${held.value}`,
      // The name Searchgate's key usage and rotations know this system by.
      'X-Searchgate-System': system,
    };
    bridge = { generation: held.generation, instance };
  }
  return bridge.instance;
}

async function search(text, pageSize) {
  const query = new Query(text).withConfiguration({ collection, pageSize });
  const held = await key.current();
  try {
    return await bridgeFor(held).search(query);
  } catch (err) {
    if (!(err instanceof BridgeError) || err.status !== 401) throw err;
    // The key was rotated (or disabled): read the store again, and try once more. A
    // second 401 is the answer.
    counters.refreshesOn401 += 1;
    const code = err.data && err.data.error ? err.data.error.code : 'unknown';
    console.log(`searchgate answered 401 (${code}): re-reading the client key`);
    return bridgeFor(await key.refresh(held.generation)).search(query);
  }
}

function send(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && url.pathname === '/stats') {
    send(res, 200, {
      system,
      keyReads: key.reads,
      failedKeyReads: key.failedReads,
      keyGeneration: key.held ? key.held.generation : 0,
      ...counters,
    });
    return;
  }
  if (req.method !== 'GET' || url.pathname !== '/search') {
    send(res, 404, { error: { code: 'not_found', message: 'GET /search?q=... or GET /stats' } });
    return;
  }
  const pageSize = Number(url.searchParams.get('pageSize') || '10');
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 100) {
    send(res, 400, { error: { code: 'invalid_request', message: 'pageSize: 1 to 100' } });
    return;
  }
  counters.searches += 1;
  try {
    const results = await search(url.searchParams.get('q') || '', pageSize);
    send(res, 200, {
      query: results.query,
      totalRecordCount: results.totalRecordCount,
      records: results.records.map((r) => ({ id: r.id, title: r.title })),
    });
  } catch (err) {
    counters.failedSearches += 1;
    // Searchgate's error bodies never hold the key; the code says what went wrong.
    const status = err instanceof BridgeError ? err.status : null;
    const code = err instanceof BridgeError && err.data && err.data.error ? err.data.error.code : null;
    console.error(`search failed: ${status || ''} ${code || err.message}`);
    send(res, 502, { error: { code: 'search_failed', message: 'the search service failed', status, searchgateCode: code } });
  }
}

async function main() {
  try {
    await key.current();
  } catch (err) {
    console.error(`cannot read the client key: ${err.message}`);
    process.exit(1);
  }
  const host = setting('HOST', '127.0.0.1');
  const port = Number(setting('PORT', '3000'));
  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      console.error(`request failed: ${err.message}`);
      if (!res.headersSent) send(res, 500, { error: { code: 'internal_error', message: 'internal error' } });
    });
  });
  server.listen(port, host, () => console.log(`listening on http://${host}:${port} as ${system}`));
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      server.close(() => process.exit(0));
      server.closeIdleConnections();
    });
  }
}

main();
