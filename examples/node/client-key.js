'use strict';
// The client key, read from Vault or OpenBao KV version 2 over its HTTP API, and kept
// for a while: the same behaviour as the Python SDK's CachedKey.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

// The field every Searchgate store keeps the key under (and `searchgate rotate` writes).
const FIELD = 'client_key';

function vaultToken(env) {
  if (env.VAULT_TOKEN) return env.VAULT_TOKEN.trim();
  const file = env.VAULT_TOKEN_FILE || path.join(os.homedir(), '.vault-token');
  // Read at every store read, not once: an agent's auto-auth sink replaces the token
  // in this file when it renews it.
  let token;
  try {
    token = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new Error(`no Vault token: set VAULT_TOKEN or VAULT_TOKEN_FILE (${file}: ${err.code})`);
  }
  if (!token) throw new Error(`no Vault token: ${file} is empty`);
  return token;
}

// `secret/searchgate/client-key` is mount `secret`, secret `searchgate/client-key`, as
// with `vault kv get` and `searchgate store read --store vault --path ...`.
function vaultReader(keyPath, env = process.env) {
  const parts = keyPath.replace(/^\/+|\/+$/g, '').split('/');
  if (parts.length < 2 || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`invalid Vault path ${JSON.stringify(keyPath)}: expected MOUNT/PATH/TO/SECRET`);
  }
  const [mount, ...rest] = parts;
  const addr = (env.VAULT_ADDR || 'https://127.0.0.1:8200').replace(/\/+$/, '');
  const url = `${addr}/v1/${mount}/data/${rest.map(encodeURIComponent).join('/')}`;
  const location = `vault:${parts.join('/')}`;

  return async function readKey() {
    const headers = { 'X-Vault-Token': vaultToken(env) };
    if (env.VAULT_NAMESPACE) headers['X-Vault-Namespace'] = env.VAULT_NAMESPACE;
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
    if (!res.ok) {
      // Vault's error list names the problem ("permission denied") and holds no secret.
      const body = await res.json().catch(() => ({}));
      const why = Array.isArray(body.errors) && body.errors.length ? `: ${body.errors.join('; ')}` : '';
      throw new Error(`${location}: Vault answered ${res.status}${why}`);
    }
    const body = await res.json();
    const value = body && body.data && body.data.data && body.data.data[FIELD];
    if (typeof value !== 'string' || !value) {
      throw new Error(`${location}: the secret has no string field ${FIELD}`);
    }
    return value;
  };
}

// Re-reads the store when its copy is `maxAgeMs` old, and on refresh(). Concurrent
// callers share one read, and callers that all saw the same refused key share one
// refresh (the generation tells them apart).
class CachedKey {
  constructor(read, { maxAgeMs = 300_000, retryMs = 10_000, now = Date.now } = {}) {
    this.read = read;
    this.maxAgeMs = maxAgeMs;
    this.retryMs = retryMs;
    this.now = now;
    this.held = null; // { value, generation, fetchedAt, nextAttemptAt }
    this.pending = null;
    this.reads = 0;
    this.failedReads = 0;
  }

  // { value, generation }: the held key while it is fresh, else a new read.
  async current() {
    if (this.held && this.fresh(this.held)) return this.view(this.held);
    const held = this.held;
    try {
      return this.view(await this.fetch());
    } catch (err) {
      if (!held) throw err;
      // The held key may well still be valid: keep serving it rather than fail every
      // request while the store is briefly unreachable. A 401 forces a real refresh.
      console.warn(`client key store failed, keeping the held key: ${err.message}`);
      held.nextAttemptAt = this.now() + this.retryMs;
      return this.view(held);
    }
  }

  // Reads the store now, unless another caller did since generation `after`.
  async refresh(after) {
    if (this.pending) await this.pending.catch(() => {});
    if (this.held && this.held.generation > after) return this.view(this.held);
    return this.view(await this.fetch());
  }

  fresh(held) {
    const now = this.now();
    if (held.nextAttemptAt !== null) return now < held.nextAttemptAt;
    return now - held.fetchedAt < this.maxAgeMs;
  }

  fetch() {
    if (!this.pending) {
      this.reads += 1;
      this.pending = this.read()
        .then((value) => {
          const generation = this.held ? this.held.generation + 1 : 1;
          this.held = { value, generation, fetchedAt: this.now(), nextAttemptAt: null };
          return this.held;
        })
        .catch((err) => {
          this.failedReads += 1;
          throw err;
        })
        .finally(() => {
          this.pending = null;
        });
    }
    return this.pending;
  }

  view(held) {
    return { value: held.value, generation: held.generation };
  }
}

module.exports = { CachedKey, vaultReader };
