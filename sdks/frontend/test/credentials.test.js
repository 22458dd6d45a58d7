import test from 'node:test';
import assert from 'node:assert/strict';

import Terapi, { AuthError } from '../src/terapi.js';
import { harness, jsonResponse } from './support/fakes.js';

const HOST = 'https://terapi.example.com';

function setup(options = { connectSessionToken: 'cst_secret' }) {
  const h = harness();
  const terapi = new Terapi({ host: HOST, ...options }, h.env);
  return { ...h, terapi };
}

test('no token and no key rejects missing_auth_token without any request or popup', async () => {
  const h = setup({});
  await assert.rejects(h.terapi.auth('zendesk', 'user-42'), (e) => e instanceof AuthError && e.type === 'missing_auth_token');
  await assert.rejects(h.terapi.auth('openai', 'user-42', { credentials: { apiKey: 'k' } }), { type: 'missing_auth_token' });
  await assert.rejects(h.terapi.auth('zendesk', 'user-42', { redirect: true }), { type: 'missing_auth_token' });
  assert.equal(h.fetch.calls.length, 0);
  assert.equal(h.win.openCalls.length, 0);
  assert.equal(h.win.assigned.length, 0);
});

test('auth() never throws synchronously: bad arguments reject invalid_request', async () => {
  const h = setup();
  await assert.rejects(h.terapi.auth(''), { type: 'invalid_request' });
  await assert.rejects(h.terapi.auth('openai', ['x']), { type: 'invalid_request' });
  await assert.rejects(h.terapi.auth('openai', 'u', { scopes: 5 }), { type: 'invalid_request' });
  await assert.rejects(h.terapi.auth('openai', 'u', { params: 'subdomain=acme' }), { type: 'invalid_request' });
  await assert.rejects(h.terapi.auth('openai', 'u', { credentials: 'sk-1' }), { type: 'invalid_request' });
  await assert.rejects(h.terapi.auth('openai', 'u', { redirect: true, returnUrl: 'not a url' }), { type: 'invalid_request' });
  assert.equal(h.fetch.calls.length, 0);
});

test('an API key is POSTed as JSON to /auth/api-key with the session token', async () => {
  const h = setup();
  h.fetch.on('POST', '/auth/api-key/', () => jsonResponse(200, { integration_id: 'openai', connection_id: 'user-42' }));
  const result = await h.terapi.auth('openai', 'user-42', { credentials: { apiKey: 'sk-live-1' } });
  assert.deepEqual(result, { integrationId: 'openai', connectionId: 'user-42' });

  assert.equal(h.fetch.calls.length, 1);
  const [call] = h.fetch.calls;
  assert.equal(call.method, 'POST');
  assert.equal(call.url.origin + call.url.pathname, `${HOST}/auth/api-key/openai`);
  assert.deepEqual(Object.fromEntries(call.url.searchParams), {
    connection_id: 'user-42',
    connect_session_token: 'cst_secret',
  });
  assert.equal(call.init.headers['Content-Type'], 'application/json');
  assert.deepEqual(JSON.parse(call.init.body), { api_key: 'sk-live-1' });
  assert.equal(h.win.openCalls.length, 0, 'no popup for credentials');
});

test('username and password are POSTed as JSON to /auth/basic with the public key', async () => {
  const h = setup({ publicKey: 'pk_dev_1' });
  h.fetch.on('POST', '/auth/basic/', () => jsonResponse(200, { integration_id: 'jira', connection_id: 'user-7' }));
  const result = await h.terapi.auth('jira', 'user-7', { credentials: { username: 'ada', password: 'hunter2' } });
  assert.deepEqual(result, { integrationId: 'jira', connectionId: 'user-7' });
  const [call] = h.fetch.calls;
  assert.equal(call.url.pathname, '/auth/basic/jira');
  assert.deepEqual(Object.fromEntries(call.url.searchParams), { connection_id: 'user-7', public_key: 'pk_dev_1' });
  assert.equal(call.init.headers['Content-Type'], 'application/json');
  assert.deepEqual(JSON.parse(call.init.body), { username: 'ada', password: 'hunter2' });
});

test('the session token wins over the public key; ids are URL-encoded; no connection id is omitted', async () => {
  const h = setup({ connectSessionToken: 'cst_1', publicKey: 'pk_1' });
  h.fetch.on('POST', '/auth/api-key/', () => jsonResponse(200, { integration_id: 'a b', connection_id: 'generated' }));
  await h.terapi.auth('a b', { credentials: { apiKey: 'k' } });
  const [call] = h.fetch.calls;
  assert.ok(call.input.startsWith(`${HOST}/auth/api-key/a%20b?`));
  assert.deepEqual(Object.fromEntries(call.url.searchParams), { connect_session_token: 'cst_1' });
});

test('an error body rejects AuthError with its code and message', async () => {
  const h = setup();
  h.fetch.on('POST', '/auth/api-key/', () =>
    jsonResponse(400, { error: { code: 'missing_credentials', message: 'api_key is required' } }),
  );
  await assert.rejects(h.terapi.auth('openai', 'u', { credentials: { apiKey: '' } }), (error) => {
    assert.ok(error instanceof AuthError);
    assert.equal(error.type, 'missing_credentials');
    assert.equal(error.message, 'api_key is required');
    return true;
  });
});

test('connect_session_required from the gateway is passed through for public keys', async () => {
  const h = setup({ publicKey: 'pk_prod' });
  h.fetch.on('POST', '/auth/basic/', () =>
    jsonResponse(403, { error: { code: 'connect_session_required', message: 'This environment requires connect sessions.' } }),
  );
  await assert.rejects(h.terapi.auth('jira', 'u', { credentials: { username: 'a', password: 'b' } }), {
    type: 'connect_session_required',
  });
});

test('a network failure rejects network_error', async () => {
  const h = setup();
  h.fetch.on('POST', '/auth/api-key/', () => {
    throw new TypeError('Failed to fetch');
  });
  await assert.rejects(h.terapi.auth('openai', 'u', { credentials: { apiKey: 'k' } }), (error) => {
    assert.equal(error.type, 'network_error');
    assert.doesNotMatch(error.message, /cst_secret/);
    return true;
  });
});

test('answers that cannot be classified reject unknown_error', async () => {
  const h = setup();
  let answer = () => new Response('<html>Bad gateway</html>', { status: 502 });
  h.fetch.on('POST', '/auth/api-key/', () => answer());
  await assert.rejects(h.terapi.auth('openai', 'u', { credentials: { apiKey: 'k' } }), { type: 'unknown_error' });
  answer = () => jsonResponse(200, { ok: true });
  await assert.rejects(h.terapi.auth('openai', 'u', { credentials: { apiKey: 'k' } }), { type: 'unknown_error' });
  answer = () => jsonResponse(500, { error: 'boom' });
  await assert.rejects(h.terapi.auth('openai', 'u', { credentials: { apiKey: 'k' } }), { type: 'unknown_error' });
});

test('credentials without an API key or username reject missing_credentials locally', async () => {
  const h = setup();
  await assert.rejects(h.terapi.auth('openai', 'u', { credentials: {} }), { type: 'missing_credentials' });
  await assert.rejects(h.terapi.auth('openai', 'u', { credentials: { password: 'p' } }), { type: 'missing_credentials' });
  assert.equal(h.fetch.calls.length, 0);
});

test('debug logs the steps but never the token, key or password', async () => {
  const h = harness();
  const terapi = new Terapi({ host: HOST, connectSessionToken: 'cst_secret', publicKey: 'pk_secret', debug: true }, h.env);
  h.fetch.on('POST', '/auth/', () => jsonResponse(200, { integration_id: 'x', connection_id: 'y' }));
  await terapi.auth('openai', 'u', { credentials: { apiKey: 'sk-secret' } });
  await terapi.auth('jira', 'u', { credentials: { username: 'ada', password: 'pw-secret' } });
  terapi.setSession('cst_other_secret');
  await terapi.auth('openai', 'u', { credentials: { apiKey: 'sk-secret' } });
  assert.ok(h.logs.length >= 6, 'steps are logged');
  const text = JSON.stringify(h.logs);
  for (const secret of ['cst_secret', 'pk_secret', 'sk-secret', 'pw-secret', 'cst_other_secret']) {
    assert.ok(!text.includes(secret), `${secret} leaked into the debug log`);
  }
  assert.match(text, /auth\/api-key\/openai/);
});

test('without debug nothing is logged', async () => {
  const h = setup();
  h.fetch.on('POST', '/auth/', () => jsonResponse(200, { integration_id: 'x', connection_id: 'y' }));
  await h.terapi.auth('openai', 'u', { credentials: { apiKey: 'k' } });
  assert.equal(h.logs.length, 0);
});
