import test from 'node:test';
import assert from 'node:assert/strict';

import Terapi, { Terapi as NamedTerapi, AuthError } from '../src/terapi.js';
import { harness } from './support/fakes.js';

test('exports the class as default and named, with AuthError', () => {
  assert.equal(Terapi, NamedTerapi);
  assert.equal(Terapi.AuthError, AuthError);
  const error = new AuthError('window_closed');
  assert.ok(error instanceof Error);
  assert.equal(error.name, 'AuthError');
  assert.equal(error.type, 'window_closed');
  assert.match(error.message, /closed/);
  assert.equal(new AuthError('custom_code', 'Explained.').message, 'Explained.');
  assert.equal(new AuthError(undefined).type, 'unknown_error');
});

test('the default host is the page origin when the module was not served over http(s)', () => {
  // Under Node the module URL is a file: URL, so the page's origin is the fallback.
  const { env } = harness({ href: 'https://app.example.com/some/page?x=1' });
  const terapi = new Terapi({ publicKey: 'pk' }, env);
  assert.equal(terapi.host, 'https://app.example.com');
});

test('an explicit host is used as a base URL without a trailing slash', () => {
  const { env } = harness();
  assert.equal(new Terapi({ host: 'https://terapi.example.com/', publicKey: 'pk' }, env).host, 'https://terapi.example.com');
  assert.equal(new Terapi({ host: 'http://localhost:3003', publicKey: 'pk' }, env).host, 'http://localhost:3003');
  assert.equal(
    new Terapi({ host: 'https://example.com/terapi/', publicKey: 'pk' }, env).host,
    'https://example.com/terapi',
  );
});

test('a malformed host throws invalid_host_url', () => {
  const { env } = harness();
  for (const host of ['', 'terapi.example.com', 'ftp://terapi.example.com', 'javascript:alert(1)', 'https://x.com/?a=1', 42]) {
    assert.throws(
      () => new Terapi({ host, publicKey: 'pk' }, env),
      (error) => error instanceof AuthError && error.type === 'invalid_host_url',
      `host ${JSON.stringify(host)}`,
    );
  }
});

test('no host and no page to derive one from throws invalid_host_url', () => {
  assert.throws(
    () => new Terapi({ publicKey: 'pk' }, { window: undefined }),
    (error) => error instanceof AuthError && error.type === 'invalid_host_url',
  );
});

test('width and height default to 500x600 and must be positive numbers', () => {
  const { env } = harness();
  const terapi = new Terapi({ publicKey: 'pk' }, env);
  assert.equal(terapi.width, 500);
  assert.equal(terapi.height, 600);
  const sized = new Terapi({ publicKey: 'pk', width: 640, height: 720 }, env);
  assert.deepEqual([sized.width, sized.height], [640, 720]);
  assert.throws(() => new Terapi({ publicKey: 'pk', width: -1 }, env), (e) => e.type === 'invalid_request');
  assert.throws(() => new Terapi({ publicKey: 'pk', height: '600' }, env), (e) => e.type === 'invalid_request');
});

test('options must be an object', () => {
  assert.throws(() => new Terapi('pk'), (e) => e instanceof AuthError && e.type === 'invalid_request');
});

test('the constructor reads no global when given an environment', () => {
  // globalThis.window does not exist under Node; the injected one is used.
  assert.equal(globalThis.window, undefined);
  const { env } = harness({ href: 'http://localhost:8080/' });
  assert.equal(new Terapi({ publicKey: 'pk' }, env).host, 'http://localhost:8080');
});

test('setSession swaps the token used by later calls', async () => {
  const h = harness();
  h.fetch.on('POST', '/auth/api-key/', () => new Response(JSON.stringify({ integration_id: 'openai', connection_id: 'u1' })));
  const terapi = new Terapi({ host: 'https://terapi.example.com' }, h.env);
  await assert.rejects(terapi.auth('openai', 'u1', { credentials: { apiKey: 'k' } }), { type: 'missing_auth_token' });
  assert.equal(terapi.setSession('cst_new'), terapi);
  await terapi.auth('openai', 'u1', { credentials: { apiKey: 'k' } });
  assert.equal(h.fetch.calls.at(-1).url.searchParams.get('connect_session_token'), 'cst_new');
  assert.throws(() => terapi.setSession(12), (e) => e.type === 'invalid_request');
});
