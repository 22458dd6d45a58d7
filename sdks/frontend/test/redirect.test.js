import test from 'node:test';
import assert from 'node:assert/strict';

import Terapi, { AuthError } from '../src/terapi.js';
import { flush, harness, jsonResponse, track } from './support/fakes.js';

const HOST = 'https://terapi.example.com';
const FLOW_ID = '11111111-2222-4333-8444-555555555555';

function setup(authMode = 'OAUTH2', href = 'https://app.example.com/settings/integrations?tab=crm') {
  const h = harness({ href });
  h.fetch.on('GET', '/connect/integrations/', () =>
    jsonResponse(200, { integration_id: 'zendesk', provider: 'zendesk', auth_mode: authMode, display_name: 'Zendesk' }),
  );
  h.terapi = new Terapi({ host: HOST, connectSessionToken: 'cst_secret' }, h.env);
  return h;
}

test('redirect mode navigates this tab to the connect URL with a return URL', async () => {
  const h = setup();
  const state = track(h.terapi.auth('zendesk', 'user-42', { redirect: true, params: { subdomain: 'acme' }, scopes: 'read, write' }));
  await flush();
  await flush();
  assert.equal(h.win.openCalls.length, 0, 'no popup');
  assert.equal(h.win.assigned.length, 1);
  const url = new URL(h.win.assigned[0]);
  assert.equal(url.origin + url.pathname, `${HOST}/oauth/connect/zendesk`);
  assert.deepEqual(Object.fromEntries(url.searchParams), {
    connection_id: 'user-42',
    connect_session_token: 'cst_secret',
    flow_id: FLOW_ID,
    origin: 'https://app.example.com',
    params: '{"subdomain":"acme"}',
    scopes: 'read,write',
    return_url: 'https://app.example.com/settings/integrations?tab=crm',
  });
  assert.equal(state.settled, false, 'the page is leaving: the promise stays pending');
  assert.equal(h.clock.pending, 0);
  assert.equal(h.win.listenerCount('message'), 0);
});

test('redirect mode uses the returnUrl given', async () => {
  const h = setup();
  track(h.terapi.auth('zendesk', 'user-42', { redirect: true, returnUrl: 'https://app.example.com/done?from=terapi' }));
  await flush();
  await flush();
  assert.equal(new URL(h.win.assigned[0]).searchParams.get('return_url'), 'https://app.example.com/done?from=terapi');
});

test('redirect mode rejects missing_credentials for credential integrations without navigating', async () => {
  const h = setup('API_KEY');
  await assert.rejects(h.terapi.auth('zendesk', 'user-42', { redirect: true }), { type: 'missing_credentials' });
  assert.equal(h.win.assigned.length, 0);
});

test('handleRedirectResult resolves the ids of a successful flow and cleans the address bar', async () => {
  const href =
    'https://app.example.com/settings?tab=crm&terapi_status=success&terapi_integration_id=zendesk&terapi_connection_id=user-42#top';
  const h = harness({ href });
  const result = await Terapi.handleRedirectResult(undefined, { window: h.win });
  assert.deepEqual(result, { integrationId: 'zendesk', connectionId: 'user-42' });
  assert.equal(h.win.replacedStates.length, 1);
  assert.equal(h.win.replacedStates[0].url, 'https://app.example.com/settings?tab=crm#top');
  assert.deepEqual(h.win.replacedStates[0].state, { page: 1 }, 'history state kept');
});

test('handleRedirectResult rejects the error of a failed flow', async () => {
  const href =
    'https://app.example.com/settings?terapi_status=error&terapi_error=access_denied&terapi_error_message=The+user+refused+access.';
  const h = harness({ href });
  await assert.rejects(Terapi.handleRedirectResult(undefined, { window: h.win }), (error) => {
    assert.ok(error instanceof AuthError);
    assert.equal(error.type, 'access_denied');
    assert.equal(error.message, 'The user refused access.');
    return true;
  });
  assert.equal(h.win.location.href, 'https://app.example.com/settings');
});

test('handleRedirectResult resolves null when the URL carries no result', async () => {
  const h = harness({ href: 'https://app.example.com/settings?tab=crm' });
  assert.equal(await Terapi.handleRedirectResult(undefined, { window: h.win }), null);
  assert.equal(h.win.replacedStates.length, 0, 'the address bar is left alone');
});

test('handleRedirectResult reads an explicit URL, also without a browser', async () => {
  assert.deepEqual(
    await Terapi.handleRedirectResult(
      'https://app.example.com/?terapi_status=success&terapi_integration_id=github&terapi_connection_id=u%201',
      { window: undefined },
    ),
    { integrationId: 'github', connectionId: 'u 1' },
  );
  assert.equal(await Terapi.handleRedirectResult('https://app.example.com/', { window: undefined }), null);
  assert.equal(await Terapi.handleRedirectResult('::not a url::', { window: undefined }), null);
  await assert.rejects(
    Terapi.handleRedirectResult('https://app.example.com/?terapi_status=error', { window: undefined }),
    { type: 'unknown_error' },
  );
  await assert.rejects(
    Terapi.handleRedirectResult('https://app.example.com/?terapi_status=success&terapi_integration_id=x', { window: undefined }),
    { type: 'unknown_error' },
  );
  await assert.rejects(
    Terapi.handleRedirectResult('https://app.example.com/?terapi_status=weird', { window: undefined }),
    { type: 'unknown_error' },
  );
});
