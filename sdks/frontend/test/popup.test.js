import test from 'node:test';
import assert from 'node:assert/strict';

import Terapi, { AuthError } from '../src/terapi.js';
import { deferred, flush, harness, jsonResponse, track } from './support/fakes.js';

const HOST = 'https://terapi.example.com';
const FLOW_ID = '11111111-2222-4333-8444-555555555555';

function integration(authMode) {
  return {
    integration_id: 'zendesk',
    provider: 'zendesk',
    auth_mode: authMode,
    display_name: 'Zendesk',
    connection_config: { subdomain: { title: 'Subdomain', pattern: '^[a-z0-9-]+$' } },
  };
}

/**
 * A Terapi against a fake gateway whose result channel long-polls: each poll waits until the
 * test answers it (`h.answerPoll`) or the SDK aborts it.
 */
function setup({ authMode = 'OAUTH2', options = { connectSessionToken: 'cst_secret' }, block = false, lookup } = {}) {
  const h = harness({ block });
  h.polls = [];
  h.fetch.on('GET', '/connect/integrations/', lookup || (() => jsonResponse(200, integration(authMode))));
  h.fetch.on('GET', '/oauth/result/', (url, init, call) => {
    const answer = deferred();
    h.polls.push({ url, call, answer });
    return answer.promise;
  });
  h.answerPoll = async (status, body) => {
    const open = h.polls.filter((poll) => !poll.call.aborted && !poll.done);
    assert.ok(open.length > 0, 'a poll is waiting');
    const poll = open.at(-1);
    poll.done = true;
    poll.answer.resolve(jsonResponse(status, body));
    await flush();
  };
  h.terapi = new Terapi({ host: HOST, ...options }, h.env);
  return h;
}

/** Resolve the auth() call made in `setup` up to the moment the popup shows the connect page. */
async function started(h, promise) {
  const state = track(promise);
  await flush();
  await flush();
  assert.equal(state.settled, false, 'still waiting for the popup');
  assert.ok(h.win.popup, 'popup opened');
  assert.equal(h.win.popup.navigations.length, 1, 'popup sent to the connect URL');
  return state;
}

function assertCleanedUp(h) {
  assert.equal(h.win.listenerCount('message'), 0, 'message listener removed');
  assert.equal(h.clock.pending, 0, 'no timer left');
  assert.ok(
    (h.polls || []).every((poll) => poll.call.aborted || poll.done),
    'no poll left in flight',
  );
}

test('looks the integration up with the session token first', async () => {
  const h = setup();
  await started(h, h.terapi.auth('zendesk', 'user-42'));
  const [lookup] = h.fetch.calls;
  assert.equal(lookup.method, 'GET');
  assert.equal(lookup.url.origin + lookup.url.pathname, `${HOST}/connect/integrations/zendesk`);
  assert.deepEqual(Object.fromEntries(lookup.url.searchParams), { connect_session_token: 'cst_secret' });
});

test('looks the integration up with the public key when there is no session token', async () => {
  const h = setup({ options: { publicKey: 'pk_dev' } });
  await started(h, h.terapi.auth('zendesk', 'user-42'));
  assert.deepEqual(Object.fromEntries(h.fetch.calls[0].url.searchParams), { public_key: 'pk_dev' });
});

test('the popup gets the connect URL with every parameter, and is centred', async () => {
  const h = setup();
  await started(
    h,
    h.terapi.auth('zendesk', 'user-42', {
      params: { subdomain: 'acme' },
      scopes: ['read', 'write'],
      authorizationParams: { prompt: 'consent' },
    }),
  );
  const popup = h.win.popup;
  // Opened blank inside the click, then sent to Terapi once the integration is known.
  assert.equal(h.win.openCalls.length, 1);
  assert.equal(h.win.openCalls[0].url, 'about:blank');
  const url = new URL(popup.url);
  assert.equal(url.origin + url.pathname, `${HOST}/oauth/connect/zendesk`);
  assert.deepEqual(Object.fromEntries(url.searchParams), {
    connection_id: 'user-42',
    connect_session_token: 'cst_secret',
    flow_id: FLOW_ID,
    origin: 'https://app.example.com',
    params: '{"subdomain":"acme"}',
    scopes: 'read,write',
    authorization_params: '{"prompt":"consent"}',
  });
  // The fake browser window sits at (100, 40) and measures 1300x1000.
  const features = Object.fromEntries(h.win.openCalls[0].features.split(',').map((pair) => pair.split('=')));
  assert.equal(features.width, '500');
  assert.equal(features.height, '600');
  assert.equal(features.left, String(100 + (1300 - 500) / 2));
  assert.equal(features.top, String(40 + (1000 - 600) / 2));
  assert.ok(popup.focused);
});

test('empty parameters are left out of the connect URL; width and height options size the popup', async () => {
  const h = harness();
  h.fetch.on('GET', '/connect/integrations/', () => jsonResponse(200, integration('OAUTH1')));
  h.fetch.on('GET', '/oauth/result/', () => new Promise(() => {}));
  const terapi = new Terapi({ host: HOST, publicKey: 'pk_dev', width: 800, height: 700 }, h.env);
  h.win.outerWidth = 0; // no window metrics: centre on the screen instead
  track(terapi.auth('zendesk', { params: {}, scopes: [], authorizationParams: {} }));
  await flush();
  await flush();
  const url = new URL(h.win.popup.url);
  assert.deepEqual(Object.fromEntries(url.searchParams), {
    public_key: 'pk_dev',
    flow_id: FLOW_ID,
    origin: 'https://app.example.com',
  });
  const features = Object.fromEntries(h.win.openCalls[0].features.split(',').map((pair) => pair.split('=')));
  assert.deepEqual([features.width, features.height], ['800', '700']);
  assert.deepEqual([features.left, features.top], [String((1920 - 800) / 2), String((1040 - 700) / 2)]);
});

for (const authMode of ['API_KEY', 'BASIC']) {
  test(`a ${authMode} integration without credentials rejects missing_credentials`, async () => {
    const h = setup({ authMode });
    await assert.rejects(h.terapi.auth('zendesk', 'user-42'), (error) => {
      assert.ok(error instanceof AuthError);
      assert.equal(error.type, 'missing_credentials');
      assert.match(error.message, authMode === 'API_KEY' ? /apiKey/ : /username/);
      return true;
    });
    assert.equal(h.win.popup.closed, true, 'the blank popup is closed again');
    assert.equal(h.win.popup.navigations.length, 0);
    assert.equal(h.fetch.callsTo('/oauth/').length, 0);
    assertCleanedUp(h);
  });
}

test('a failed integration lookup rejects with the gateway code', async () => {
  const h = setup({
    options: { publicKey: 'pk_prod' },
    lookup: () => jsonResponse(403, { error: { code: 'connect_session_required', message: 'Use a connect session.' } }),
  });
  await assert.rejects(h.terapi.auth('zendesk', 'user-42'), { type: 'connect_session_required', message: 'Use a connect session.' });
  assert.equal(h.win.popup.closed, true);
  assertCleanedUp(h);
});

test('an unreachable gateway rejects network_error', async () => {
  const h = setup({
    lookup: () => {
      throw new TypeError('Failed to fetch');
    },
  });
  await assert.rejects(h.terapi.auth('zendesk', 'user-42'), { type: 'network_error' });
});

test('a popup the browser blocked rejects blocked_by_browser', async () => {
  const h = setup({ block: true });
  await assert.rejects(h.terapi.auth('zendesk', 'user-42'), { type: 'blocked_by_browser' });
  assert.equal(h.win.openCalls.length, 1);
  assert.equal(h.fetch.callsTo('/oauth/').length, 0);
  assertCleanedUp(h);
});

test('the popup is opened synchronously, inside the click that called auth()', () => {
  const h = setup();
  h.terapi.auth('zendesk', 'user-42').catch(() => {});
  assert.equal(h.win.openCalls.length, 1);
});

test('a success message from Terapi for this flow resolves', async () => {
  const h = setup();
  const state = await started(h, h.terapi.auth('zendesk', 'user-42'));
  h.win.postMessageFrom(HOST, { source: 'terapi', flowId: FLOW_ID, type: 'success', integrationId: 'zendesk', connectionId: 'user-42' });
  await flush();
  assert.deepEqual(state.value, { integrationId: 'zendesk', connectionId: 'user-42' });
  assert.equal(h.win.popup.closed, true, 'popup closed after success');
  assertCleanedUp(h);
});

test('messages from another origin, another source or another flow are ignored', async () => {
  const h = setup();
  const state = await started(h, h.terapi.auth('zendesk', 'user-42'));
  const good = { source: 'terapi', flowId: FLOW_ID, type: 'success', integrationId: 'zendesk', connectionId: 'user-42' };
  h.win.postMessageFrom('https://evil.example.com', good);
  h.win.postMessageFrom('https://terapi.example.com.evil.com', good);
  h.win.postMessageFrom('http://terapi.example.com', good);
  h.win.postMessageFrom(HOST, { ...good, source: 'other' });
  h.win.postMessageFrom(HOST, { ...good, flowId: 'another-flow' });
  h.win.postMessageFrom(HOST, { ...good, flowId: undefined });
  h.win.postMessageFrom(HOST, 'terapi:success');
  h.win.postMessageFrom(HOST, null);
  h.win.postMessageFrom(HOST, { source: 'terapi', flowId: FLOW_ID, type: 'progress' });
  await flush();
  assert.equal(state.settled, false);
  assert.equal(h.win.listenerCount('message'), 1);

  h.win.postMessageFrom(HOST, good);
  await flush();
  assert.deepEqual(state.value, { integrationId: 'zendesk', connectionId: 'user-42' });
});

test('an error message rejects with its type and message', async () => {
  const h = setup();
  const state = await started(h, h.terapi.auth('zendesk', 'user-42'));
  h.win.postMessageFrom(HOST, {
    source: 'terapi',
    flowId: FLOW_ID,
    type: 'error',
    error: { type: 'access_denied', message: 'The user refused access.' },
  });
  await flush();
  assert.ok(state.error instanceof AuthError);
  assert.equal(state.error.type, 'access_denied');
  assert.equal(state.error.message, 'The user refused access.');
  assertCleanedUp(h);
});

test('the result channel is long-polled with the flow id', async () => {
  const h = setup();
  await started(h, h.terapi.auth('zendesk', 'user-42'));
  assert.equal(h.polls.length, 1);
  const [poll] = h.polls;
  assert.equal(poll.url.origin + poll.url.pathname, `${HOST}/oauth/result/${FLOW_ID}`);
  assert.deepEqual(Object.fromEntries(poll.url.searchParams), { wait: '20' });
  assert.ok(poll.call.init.signal, 'polls can be aborted');
});

test('when the provider severed window.opener, the result channel resolves', async () => {
  const h = setup();
  const state = await started(h, h.terapi.auth('zendesk', 'user-42'));
  // Not started yet: keep polling after a pause.
  await h.answerPoll(404, { error: { code: 'not_found', message: 'unknown flow' } });
  assert.equal(h.polls.length, 1);
  await h.clock.tick(1000);
  assert.equal(h.polls.length, 2);
  // Still pending: ask again.
  await h.answerPoll(200, { status: 'pending' });
  await h.clock.tick(500);
  assert.equal(h.polls.length, 3);
  assert.equal(state.settled, false);
  await h.answerPoll(200, { status: 'success', integration_id: 'zendesk', connection_id: 'user-42' });
  assert.deepEqual(state.value, { integrationId: 'zendesk', connectionId: 'user-42' });
  assert.equal(h.win.popup.closeCalls, 1, 'the popup is closed for the user');
  assertCleanedUp(h);
});

test('a failed result on the channel rejects with its code', async () => {
  const h = setup();
  const state = await started(h, h.terapi.auth('zendesk', 'user-42'));
  await h.answerPoll(200, { status: 'failed', error: { code: 'invalid_grant', message: 'The code expired.' } });
  assert.equal(state.error.type, 'invalid_grant');
  assert.equal(state.error.message, 'The code expired.');
  assertCleanedUp(h);
});

test('a failing result channel is retried, not fatal', async () => {
  const h = setup();
  const state = await started(h, h.terapi.auth('zendesk', 'user-42'));
  h.polls[0].done = true;
  h.polls[0].answer.reject(new TypeError('Failed to fetch'));
  await flush();
  await h.clock.tick(1000);
  await h.answerPoll(502, undefined);
  await h.clock.tick(1000);
  assert.equal(h.polls.length, 3);
  assert.equal(state.settled, false);
});

test('a long poll that never answers is abandoned and retried', async () => {
  const h = setup();
  const state = await started(h, h.terapi.auth('zendesk', 'user-42'));
  await h.clock.tick(30000);
  assert.equal(h.polls[0].call.aborted, true);
  await h.clock.tick(1000);
  assert.equal(h.polls.length, 2);
  assert.equal(state.settled, false);
});

test('closing the popup rejects window_closed after one last look at the result channel', async () => {
  const h = setup();
  const state = await started(h, h.terapi.auth('zendesk', 'user-42'));
  await h.clock.tick(500);
  assert.equal(state.settled, false);
  h.win.popup.closed = true;
  await h.clock.tick(500);
  assert.equal(h.polls[0].call.aborted, true, 'the long poll is cut short');
  assert.equal(h.polls.length, 2);
  const last = h.polls[1];
  assert.equal(last.url.pathname, `/oauth/result/${FLOW_ID}`);
  assert.equal(last.url.searchParams.get('wait'), null, 'the last check does not wait');
  assert.equal(state.settled, false);
  await h.answerPoll(200, { status: 'pending' });
  assert.ok(state.error instanceof AuthError);
  assert.equal(state.error.type, 'window_closed');
  assertCleanedUp(h);
});

test('a result that landed just before the popup closed still resolves', async () => {
  const h = setup();
  const state = await started(h, h.terapi.auth('zendesk', 'user-42'));
  h.win.popup.closed = true;
  await h.clock.tick(500);
  await h.answerPoll(200, { status: 'success', integration_id: 'zendesk', connection_id: 'user-42' });
  assert.deepEqual(state.value, { integrationId: 'zendesk', connectionId: 'user-42' });
  assertCleanedUp(h);
});

test('closing the popup before the flow started rejects window_closed', async () => {
  const h = setup();
  const state = await started(h, h.terapi.auth('zendesk', 'user-42'));
  h.win.popup.closed = true;
  await h.clock.tick(500);
  await h.answerPoll(404, { error: { code: 'not_found', message: 'unknown flow' } });
  assert.equal(state.error.type, 'window_closed');
});

test('a blank popup closed during the lookup rejects window_closed without navigating', async () => {
  const lookup = deferred();
  const h = setup({ lookup: () => lookup.promise });
  const state = track(h.terapi.auth('zendesk', 'user-42'));
  h.win.popup.closed = true;
  lookup.resolve(jsonResponse(200, integration('OAUTH2')));
  await flush();
  await flush();
  assert.equal(state.error.type, 'window_closed');
  assert.equal(h.win.popup.navigations.length, 0);
  assertCleanedUp(h);
});

test('settles exactly once, whatever arrives afterwards', async () => {
  const h = setup();
  const promise = h.terapi.auth('zendesk', 'user-42');
  const state = await started(h, promise);
  const message = { source: 'terapi', flowId: FLOW_ID, type: 'success', integrationId: 'zendesk', connectionId: 'first' };
  // The message listener is captured so it can be called again after it was removed.
  const [listener] = [...h.win.listeners.get('message')];
  h.win.postMessageFrom(HOST, message);
  await flush();
  assert.deepEqual(state.value, { integrationId: 'zendesk', connectionId: 'first' });
  assert.equal(h.polls[0].call.aborted, true, 'the in-flight poll is aborted');

  listener({ origin: HOST, data: { ...message, type: 'error', error: { type: 'late' } } });
  listener({ origin: HOST, data: { ...message, connectionId: 'second' } });
  h.win.popup.closed = true;
  await h.clock.tick(5000);
  await flush();
  assert.equal(state.count, 1);
  assert.deepEqual(await promise, { integrationId: 'zendesk', connectionId: 'first' });
  assert.equal(h.polls.length, 1, 'no poll after settling');
  assertCleanedUp(h);
});

test('a message and a channel result arriving together settle once', async () => {
  const h = setup();
  const state = await started(h, h.terapi.auth('zendesk', 'user-42'));
  h.polls[0].done = true;
  h.polls[0].answer.resolve(jsonResponse(200, { status: 'failed', error: { code: 'late_failure', message: 'x' } }));
  h.win.postMessageFrom(HOST, { source: 'terapi', flowId: FLOW_ID, type: 'success', integrationId: 'zendesk', connectionId: 'user-42' });
  await flush();
  await flush();
  assert.equal(state.count, 1);
  assert.deepEqual(state.value, { integrationId: 'zendesk', connectionId: 'user-42' });
  assertCleanedUp(h);
});

test('two flows at once have their own flow ids and popups', async () => {
  const h = setup();
  const first = await started(h, h.terapi.auth('zendesk', 'user-1'));
  const second = track(h.terapi.auth('zendesk', 'user-2'));
  await flush();
  await flush();
  assert.equal(h.win.popups.length, 2);
  assert.notEqual(h.win.openCalls[0].name, h.win.openCalls[1].name);
  const secondFlow = new URL(h.win.popups[1].url).searchParams.get('flow_id');
  assert.notEqual(secondFlow, FLOW_ID);
  h.win.postMessageFrom(HOST, { source: 'terapi', flowId: secondFlow, type: 'success', integrationId: 'zendesk', connectionId: 'user-2' });
  await flush();
  assert.equal(first.settled, false);
  assert.deepEqual(second.value, { integrationId: 'zendesk', connectionId: 'user-2' });
});

test('debug logs of a popup flow never hold the token', async () => {
  const h = setup({ options: { connectSessionToken: 'cst_secret', debug: true } });
  const state = await started(h, h.terapi.auth('zendesk', 'user-42'));
  h.win.postMessageFrom(HOST, { source: 'terapi', flowId: FLOW_ID, type: 'success', integrationId: 'zendesk', connectionId: 'user-42' });
  await flush();
  assert.ok(state.value);
  const text = JSON.stringify(h.logs);
  assert.ok(h.logs.length >= 4);
  assert.ok(!text.includes('cst_secret'));
  assert.match(text, /oauth\/connect\/zendesk/);
});
