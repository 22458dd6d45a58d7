/**
 * @terapihq/frontend: let your end users authorize an integration from your web app.
 *
 *   import Terapi from '@terapihq/frontend';
 *   const terapi = new Terapi({ connectSessionToken });
 *   terapi.auth('zendesk', 'user-42', { params: { subdomain: 'acme' } })
 *     .then(({ integrationId, connectionId }) => ...)
 *     .catch((error) => ... error.type ...);
 *
 * Dependency-free ES module. scripts/build-global.mjs turns this file into the classic
 * script dist/terapi.global.js (window.Terapi); keep the two export lines at the end of
 * the file and the single MODULE_URL line as they are, the build looks for them.
 */

// The URL this script was served from; the default host is its origin.
const MODULE_URL = import.meta.url;

const DEFAULT_WIDTH = 500;
const DEFAULT_HEIGHT = 600;
const POPUP_CLOSED_CHECK_MS = 500;
const RESULT_WAIT_SECONDS = 20;
// A long poll that has not answered well after the server's own wait is given up and retried.
const RESULT_POLL_TIMEOUT_MS = (RESULT_WAIT_SECONDS + 10) * 1000;
// Pause before asking the result channel again after "pending".
const RESULT_PENDING_GAP_MS = 500;
// Pause after "not started yet" (404) or a failed poll.
const RESULT_RETRY_MS = 1000;
const CREDENTIAL_MODES = { API_KEY: 'apiKey', BASIC: 'username and password' };
const REDACTED_QUERY_KEYS = ['connect_session_token', 'public_key'];
const REDIRECT_PARAM_PREFIX = 'terapi_';

const MESSAGES = {
  invalid_host_url: 'The Terapi host must be an http(s) URL.',
  missing_auth_token:
    'No connect session token or public key: pass connectSessionToken (recommended) or publicKey to new Terapi().',
  invalid_request: 'The arguments given to the Terapi SDK are not valid.',
  missing_credentials: 'This integration needs credentials: pass them with auth(..., { credentials }).',
  blocked_by_browser:
    'The browser blocked the authorization popup: call auth() from a click handler, or use { redirect: true }.',
  window_closed: 'The authorization window was closed before the authorization finished.',
  network_error: 'Could not reach Terapi.',
  unknown_error: 'The authorization failed for an unknown reason.',
};

/** The error every failed call rejects (or throws) with; switch on `type`. */
class AuthError extends Error {
  /**
   * @param {string} type a stable code such as 'window_closed'
   * @param {string} [message] a human explanation
   */
  constructor(type, message) {
    const code = typeof type === 'string' && type ? type : 'unknown_error';
    super(typeof message === 'string' && message ? message : MESSAGES[code] || MESSAGES.unknown_error);
    this.name = 'AuthError';
    this.type = code;
  }
}

// ------------------------------------------------------------------ helpers

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function nonEmptyString(value) {
  return typeof value === 'string' && value.length > 0;
}

function httpUrl(value) {
  if (!nonEmptyString(value)) return null;
  let url;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url : null;
}

/** `{ base, origin }` for a host option: an http(s) URL, optionally with a path prefix. */
function parseHost(value) {
  const url = httpUrl(value);
  if (!url || url.username || url.password || url.search || url.hash) {
    throw new AuthError('invalid_host_url', `The Terapi host must be an http(s) URL, got ${JSON.stringify(String(value))}.`);
  }
  return { base: url.origin + url.pathname.replace(/\/+$/, ''), origin: url.origin };
}

/** The origin of the script URL when it was served over http(s), else null. */
function scriptOrigin(scriptUrl) {
  const url = httpUrl(scriptUrl);
  return url ? url.origin : null;
}

function buildUrl(base, path, query) {
  const search = new URLSearchParams();
  for (const [key, value] of query) {
    if (value !== undefined && value !== null && value !== '') search.append(key, String(value));
  }
  const text = search.toString();
  return base + path + (text ? `?${text}` : '');
}

/** The URL with token and key values hidden, safe for debug logs. */
function redactUrl(value) {
  try {
    const url = new URL(value);
    for (const key of REDACTED_QUERY_KEYS) {
      if (url.searchParams.has(key)) url.searchParams.set(key, 'redacted');
    }
    return url.toString();
  } catch {
    return '[url]';
  }
}

function errorFromBody(status, body) {
  const error = isPlainObject(body) ? body.error : null;
  if (isPlainObject(error) && nonEmptyString(error.code)) {
    return new AuthError(error.code, nonEmptyString(error.message) ? error.message : undefined);
  }
  return new AuthError('unknown_error', `Terapi answered HTTP ${status} without an error code.`);
}

function randomUUIDFrom(cryptoImpl) {
  if (cryptoImpl && typeof cryptoImpl.randomUUID === 'function') return cryptoImpl.randomUUID();
  // crypto.randomUUID only exists in secure contexts; getRandomValues exists everywhere.
  const bytes = new Uint8Array(16);
  if (cryptoImpl && typeof cryptoImpl.getRandomValues === 'function') {
    cryptoImpl.getRandomValues(bytes);
  } else {
    throw new AuthError('unknown_error', 'No cryptographic random source to create a flow id.');
  }
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Globals, read when used rather than when the module loads, so that tests (and
 * server-side rendering) can load the module without a browser. `env` overrides them.
 */
class Environment {
  constructor(env) {
    this.overrides = isPlainObject(env) ? env : {};
  }

  get window() {
    return 'window' in this.overrides ? this.overrides.window : globalThis.window;
  }

  get console() {
    return this.overrides.console || globalThis.console;
  }

  fetch(url, init) {
    const impl = this.overrides.fetch || globalThis.fetch;
    if (typeof impl !== 'function') {
      return Promise.reject(new TypeError('fetch is not available'));
    }
    return impl.call(globalThis, url, init);
  }

  setTimeout(fn, ms) {
    return (this.overrides.setTimeout || globalThis.setTimeout).call(globalThis, fn, ms);
  }

  clearTimeout(id) {
    (this.overrides.clearTimeout || globalThis.clearTimeout).call(globalThis, id);
  }

  setInterval(fn, ms) {
    return (this.overrides.setInterval || globalThis.setInterval).call(globalThis, fn, ms);
  }

  clearInterval(id) {
    (this.overrides.clearInterval || globalThis.clearInterval).call(globalThis, id);
  }

  randomUUID() {
    if (typeof this.overrides.randomUUID === 'function') return this.overrides.randomUUID();
    return randomUUIDFrom(globalThis.crypto);
  }
}

const ABORTED = Symbol('aborted');

/**
 * One HTTP exchange with Terapi: `{ ok, status, body }` with the JSON body (or null).
 * Rejects AuthError('network_error') when the request cannot be made, or ABORTED.
 */
async function request(env, url, init) {
  let response;
  try {
    response = await env.fetch(url, init);
  } catch (error) {
    if (init && init.signal && init.signal.aborted) throw ABORTED;
    const detail = error && error.message ? ` (${error.message})` : '';
    throw new AuthError('network_error', `Could not reach Terapi at ${new URL(url).origin}${detail}.`);
  }
  let body = null;
  try {
    const text = await response.text();
    body = text ? JSON.parse(text) : null;
  } catch {
    if (init && init.signal && init.signal.aborted) throw ABORTED;
    body = null;
  }
  return { ok: Boolean(response.ok), status: response.status, body };
}

// ------------------------------------------------------------------ Terapi

class Terapi {
  /**
   * @param {object} [options] { host, connectSessionToken, publicKey, width, height, debug }
   * @param {object} [env] for tests: { window, fetch, setTimeout, clearTimeout, setInterval,
   *   clearInterval, randomUUID, console } replacing the browser's globals
   */
  constructor(options = {}, env = undefined) {
    if (!isPlainObject(options)) {
      throw new AuthError('invalid_request', 'new Terapi() takes an options object.');
    }
    this._env = new Environment(env);
    this._debug = options.debug === true;

    let host = options.host;
    if (host === undefined || host === null) {
      host = scriptOrigin(MODULE_URL);
      if (!host) {
        const win = this._env.window;
        host = win && win.location ? win.location.origin : undefined;
      }
      if (!nonEmptyString(host) || host === 'null') {
        throw new AuthError(
          'invalid_host_url',
          'No Terapi host: pass { host } to new Terapi(), none could be derived from the script URL or the page.',
        );
      }
    }
    const parsed = parseHost(host);
    this.host = parsed.base;
    this._hostOrigin = parsed.origin;

    this.width = this._dimension(options.width, DEFAULT_WIDTH, 'width');
    this.height = this._dimension(options.height, DEFAULT_HEIGHT, 'height');
    this._token = this._credential(options.connectSessionToken, 'connectSessionToken');
    this._publicKey = this._credential(options.publicKey, 'publicKey');
    this._log('ready', { host: this.host, mode: this._token ? 'connect session' : this._publicKey ? 'public key' : 'none' });
  }

  /** Swap the connect session token (for instance after the previous one expired). */
  setSession(connectSessionToken) {
    this._token = this._credential(connectSessionToken, 'connectSessionToken');
    this._log('session token replaced');
    return this;
  }

  /**
   * Authorize `integrationId` for `connectionId`.
   * Resolves { integrationId, connectionId }; rejects AuthError.
   */
  auth(integrationId, connectionId, options) {
    if (isPlainObject(connectionId) && options === undefined) {
      options = connectionId;
      connectionId = undefined;
    }
    let flow;
    try {
      flow = this._prepare(integrationId, connectionId, options);
    } catch (error) {
      return Promise.reject(error);
    }
    this._log('auth', {
      integrationId: flow.integrationId,
      connectionId: flow.connectionId,
      mode: flow.options.credentials ? 'credentials' : flow.options.redirect ? 'redirect' : 'popup',
    });
    if (flow.options.credentials) return this._authWithCredentials(flow);
    if (flow.options.redirect) return this._authWithRedirect(flow);
    return this._authWithPopup(flow);
  }

  /**
   * Read the result Terapi appended to the return URL of a redirect-mode `auth()`.
   * Resolves { integrationId, connectionId }, rejects AuthError, or resolves null when the URL
   * carries no result. In a browser it also removes the terapi_* parameters from the address bar.
   * @param {string} [url] defaults to window.location.href
   * @param {object} [env] for tests: { window }
   */
  static handleRedirectResult(url = undefined, env = undefined) {
    const environment = new Environment(env);
    const win = environment.window;
    const current = win && win.location ? win.location.href : undefined;
    const target = url === undefined || url === null ? current : String(url);
    let parsed = null;
    try {
      parsed = target === undefined ? null : new URL(target, current);
    } catch {
      parsed = null;
    }
    cleanAddressBar(win);
    if (!parsed) return Promise.resolve(null);
    const query = parsed.searchParams;
    const status = query.get('terapi_status');
    if (status === null) return Promise.resolve(null);
    if (status === 'success') {
      const integrationId = query.get('terapi_integration_id');
      const connectionId = query.get('terapi_connection_id');
      if (integrationId && connectionId) return Promise.resolve({ integrationId, connectionId });
      return Promise.reject(new AuthError('unknown_error', 'The redirect result lacks the integration or connection id.'));
    }
    if (status === 'error') {
      return Promise.reject(
        new AuthError(query.get('terapi_error') || 'unknown_error', query.get('terapi_error_message') || undefined),
      );
    }
    return Promise.reject(new AuthError('unknown_error', `Unknown redirect status ${JSON.stringify(status)}.`));
  }

  // -------------------------------------------------------------- internals

  _dimension(value, fallback, name) {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new AuthError('invalid_request', `${name} must be a positive number of pixels.`);
    }
    return Math.round(value);
  }

  _credential(value, name) {
    if (value === undefined || value === null || value === '') return null;
    if (typeof value !== 'string') throw new AuthError('invalid_request', `${name} must be a string.`);
    return value;
  }

  _log(step, details) {
    if (!this._debug) return;
    const log = this._env.console;
    if (!log) return;
    const write = typeof log.debug === 'function' ? log.debug : log.log;
    if (typeof write !== 'function') return;
    if (details === undefined) write.call(log, `[terapi] ${step}`);
    else write.call(log, `[terapi] ${step}`, details);
  }

  /** The query parameter that authenticates a browser request: the token wins over the key. */
  _authQuery() {
    if (this._token) return [['connect_session_token', this._token]];
    return [['public_key', this._publicKey]];
  }

  _prepare(integrationId, connectionId, options) {
    if (!nonEmptyString(integrationId)) {
      throw new AuthError('invalid_request', 'auth() needs an integration id (a non-empty string).');
    }
    if (connectionId === null || connectionId === '') connectionId = undefined;
    if (typeof connectionId === 'number' && Number.isFinite(connectionId)) connectionId = String(connectionId);
    if (connectionId !== undefined && typeof connectionId !== 'string') {
      throw new AuthError('invalid_request', 'The connection id must be a string.');
    }
    if (options === undefined || options === null) options = {};
    if (!isPlainObject(options)) throw new AuthError('invalid_request', 'auth() options must be an object.');
    if (!this._token && !this._publicKey) throw new AuthError('missing_auth_token');

    const { params, scopes, authorizationParams, credentials, returnUrl } = options;
    if (params !== undefined && params !== null && !isPlainObject(params)) {
      throw new AuthError('invalid_request', 'params must be an object.');
    }
    if (authorizationParams !== undefined && authorizationParams !== null && !isPlainObject(authorizationParams)) {
      throw new AuthError('invalid_request', 'authorizationParams must be an object.');
    }
    let scopeList = [];
    if (typeof scopes === 'string') scopeList = scopes.split(',');
    else if (Array.isArray(scopes)) scopeList = scopes;
    else if (scopes !== undefined && scopes !== null) {
      throw new AuthError('invalid_request', 'scopes must be an array of strings.');
    }
    scopeList = scopeList.map((scope) => String(scope).trim()).filter(Boolean);
    if (credentials !== undefined && credentials !== null && !isPlainObject(credentials)) {
      throw new AuthError('invalid_request', 'credentials must be { apiKey } or { username, password }.');
    }
    if (returnUrl !== undefined && returnUrl !== null && !httpUrl(String(returnUrl))) {
      throw new AuthError('invalid_request', 'returnUrl must be an absolute http(s) URL.');
    }
    return {
      integrationId,
      connectionId,
      options: {
        params: params && Object.keys(params).length ? params : null,
        scopes: scopeList,
        authorizationParams: authorizationParams && Object.keys(authorizationParams).length ? authorizationParams : null,
        credentials: credentials || null,
        redirect: options.redirect === true,
        returnUrl: returnUrl ? String(returnUrl) : null,
      },
    };
  }

  // ---- credentials typed by the end user (API key, Basic): one POST, no popup

  async _authWithCredentials(flow) {
    const { credentials } = flow.options;
    let slug;
    let body;
    if (credentials.apiKey !== undefined && credentials.apiKey !== null) {
      slug = 'api-key';
      body = { api_key: credentials.apiKey };
    } else if (credentials.username !== undefined && credentials.username !== null) {
      slug = 'basic';
      body = { username: credentials.username, password: credentials.password ?? '' };
    } else {
      throw new AuthError('missing_credentials', 'credentials must hold apiKey, or username and password.');
    }
    const url = buildUrl(this.host, `/auth/${slug}/${encodeURIComponent(flow.integrationId)}`, [
      ['connection_id', flow.connectionId],
      ...this._authQuery(),
    ]);
    this._log(`POST ${redactUrl(url)}`);
    const response = await request(this._env, url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      const error = errorFromBody(response.status, response.body);
      this._log('credentials refused', { status: response.status, type: error.type });
      throw error;
    }
    const result = connectionResult(response.body);
    if (!result) throw new AuthError('unknown_error', 'Terapi answered without the integration and connection ids.');
    this._log('connected', result);
    return result;
  }

  // ---- the integration's description, which says how it authorizes

  async _describeIntegration(flow) {
    const url = buildUrl(this.host, `/connect/integrations/${encodeURIComponent(flow.integrationId)}`, this._authQuery());
    this._log(`GET ${redactUrl(url)}`);
    const response = await request(this._env, url, { method: 'GET' });
    if (!response.ok) {
      const error = errorFromBody(response.status, response.body);
      this._log('integration lookup refused', { status: response.status, type: error.type });
      throw error;
    }
    if (!isPlainObject(response.body)) {
      throw new AuthError('unknown_error', 'Terapi described the integration in an unexpected format.');
    }
    const authMode = String(response.body.auth_mode || '').toUpperCase();
    this._log('integration', { authMode, provider: response.body.provider });
    if (Object.prototype.hasOwnProperty.call(CREDENTIAL_MODES, authMode)) {
      throw new AuthError(
        'missing_credentials',
        `Integration "${flow.integrationId}" uses ${authMode}: pass credentials: { ${CREDENTIAL_MODES[authMode]} } to auth().`,
      );
    }
    return response.body;
  }

  /** /oauth/connect/<integration>: where the popup (or the redirected tab) starts the flow. */
  _connectUrl(flow, flowId, extra = []) {
    const win = this._env.window;
    const { params, scopes, authorizationParams } = flow.options;
    return buildUrl(this.host, `/oauth/connect/${encodeURIComponent(flow.integrationId)}`, [
      ['connection_id', flow.connectionId],
      ...this._authQuery(),
      ['flow_id', flowId],
      ['origin', win && win.location ? win.location.origin : undefined],
      ['params', params ? JSON.stringify(params) : undefined],
      ['scopes', scopes.length ? scopes.join(',') : undefined],
      ['authorization_params', authorizationParams ? JSON.stringify(authorizationParams) : undefined],
      ...extra,
    ]);
  }

  // ---- redirect mode: navigate this tab, come back to returnUrl with terapi_* parameters

  async _authWithRedirect(flow) {
    const win = this._env.window;
    if (!win || !win.location) {
      throw new AuthError('invalid_request', 'Redirect mode needs a browser window.');
    }
    const returnUrl = flow.options.returnUrl || win.location.href;
    await this._describeIntegration(flow);
    const url = this._connectUrl(flow, this._env.randomUUID(), [['return_url', returnUrl]]);
    this._log(`redirecting to ${redactUrl(url)}`);
    if (typeof win.location.assign === 'function') win.location.assign(url);
    else win.location.href = url;
    // The page is leaving: the result comes back through Terapi.handleRedirectResult().
    return new Promise(() => {});
  }

  // ---- popup mode

  _popupFeatures() {
    const win = this._env.window;
    const screen = (win && win.screen) || {};
    const width = this.width;
    const height = this.height;
    let left;
    let top;
    if (win && win.outerWidth && win.outerHeight) {
      // Centre on the browser window (which may sit on any monitor).
      const baseLeft = win.screenX ?? win.screenLeft ?? 0;
      const baseTop = win.screenY ?? win.screenTop ?? 0;
      left = baseLeft + (win.outerWidth - width) / 2;
      top = baseTop + (win.outerHeight - height) / 2;
    } else {
      const screenWidth = screen.availWidth || screen.width || width;
      const screenHeight = screen.availHeight || screen.height || height;
      left = (screenWidth - width) / 2;
      top = (screenHeight - height) / 2;
    }
    left = Math.round(left);
    top = Math.round(top);
    return {
      left,
      top,
      features: `width=${width},height=${height},left=${left},top=${top},resizable=yes,scrollbars=yes,status=no`,
    };
  }

  _authWithPopup(flow) {
    const env = this._env;
    const win = env.window;
    if (!win || typeof win.open !== 'function') {
      return Promise.reject(new AuthError('invalid_request', 'auth() needs a browser window to open its popup.'));
    }
    let flowId;
    try {
      flowId = env.randomUUID();
    } catch (error) {
      return Promise.reject(error);
    }
    // Open the popup now, while the click that called auth() still counts as a user gesture;
    // browsers block popups opened after an await. It shows a blank page until the
    // integration lookup answers, then goes to the connect URL.
    const { features, left, top } = this._popupFeatures();
    let popup = null;
    try {
      popup = win.open('about:blank', `terapi_${flowId.replace(/-/g, '')}`, features);
    } catch {
      popup = null;
    }
    this._log(popup ? 'popup opened' : 'popup blocked', { width: this.width, height: this.height, left, top });

    return new Promise((resolve, reject) => {
      const state = {
        settled: false,
        closing: false,
        closedTimer: null,
        pollTimer: null,
        pollController: null,
        onMessage: null,
      };

      const cleanup = () => {
        if (state.onMessage && typeof win.removeEventListener === 'function') {
          win.removeEventListener('message', state.onMessage);
        }
        state.onMessage = null;
        if (state.closedTimer !== null) env.clearInterval(state.closedTimer);
        state.closedTimer = null;
        if (state.pollTimer !== null) env.clearTimeout(state.pollTimer);
        state.pollTimer = null;
        if (state.pollController) state.pollController.abort();
        state.pollController = null;
      };

      const closePopup = () => {
        if (!popup) return;
        try {
          if (!popup.closed) popup.close();
        } catch {
          // A popup we cannot reach any more is left alone.
        }
      };

      const succeed = (result, via) => {
        if (state.settled) return;
        state.settled = true;
        cleanup();
        closePopup();
        this._log(`connected (via ${via})`, result);
        resolve(result);
      };

      const fail = (error, via, keepPopup = false) => {
        if (state.settled) return;
        state.settled = true;
        cleanup();
        if (!keepPopup) closePopup();
        this._log(`failed (via ${via})`, { type: error.type });
        reject(error);
      };

      // Results posted by the popup's last page. Only Terapi's origin, only this flow.
      state.onMessage = (event) => {
        if (state.settled || !event) return;
        const data = event.data;
        if (event.origin !== this._hostOrigin) return;
        if (!isPlainObject(data) || data.source !== 'terapi' || data.flowId !== flowId) return;
        if (data.type === 'success') {
          if (nonEmptyString(data.integrationId) && nonEmptyString(data.connectionId)) {
            succeed({ integrationId: data.integrationId, connectionId: data.connectionId }, 'message');
          } else {
            fail(new AuthError('unknown_error', 'The popup reported success without the ids.'), 'message');
          }
        } else if (data.type === 'error') {
          const error = isPlainObject(data.error) ? data.error : {};
          fail(new AuthError(error.type || error.code, error.message), 'message');
        } else {
          this._log('message ignored', { type: data.type });
        }
      };

      // The result channel: works even when the provider severed window.opener.
      const askResultChannel = async (wait) => {
        const url = buildUrl(this.host, `/oauth/result/${encodeURIComponent(flowId)}`, [
          ['wait', wait ? RESULT_WAIT_SECONDS : undefined],
        ]);
        const controller = typeof AbortController === 'function' ? new AbortController() : null;
        state.pollController = controller;
        const timeout = wait && controller ? env.setTimeout(() => controller.abort(), RESULT_POLL_TIMEOUT_MS) : null;
        try {
          const response = await request(env, url, { method: 'GET', signal: controller ? controller.signal : undefined });
          if (response.status === 404) return { status: 'not_started' };
          if (!response.ok) return { status: 'unavailable', httpStatus: response.status };
          const body = isPlainObject(response.body) ? response.body : {};
          if (body.status === 'success') {
            const result = connectionResult(body);
            return result ? { status: 'success', result } : { status: 'unavailable' };
          }
          if (body.status === 'failed') return { status: 'failed', error: errorFromBody(response.status, body) };
          return { status: body.status === 'pending' ? 'pending' : 'unavailable' };
        } catch (error) {
          if (error === ABORTED) return { status: 'aborted' };
          return { status: 'unavailable', error };
        } finally {
          if (timeout !== null) env.clearTimeout(timeout);
          if (state.pollController === controller) state.pollController = null;
        }
      };

      const poll = async () => {
        state.pollTimer = null;
        if (state.settled || state.closing) return;
        const answer = await askResultChannel(true);
        if (state.settled || state.closing) return;
        if (answer.status === 'success') return succeed(answer.result, 'result channel');
        if (answer.status === 'failed') return fail(answer.error, 'result channel');
        const gap = answer.status === 'pending' ? RESULT_PENDING_GAP_MS : RESULT_RETRY_MS;
        if (answer.status !== 'pending') this._log('result channel', { status: answer.status });
        state.pollTimer = env.setTimeout(() => guard(poll()), gap);
      };

      const popupClosed = async () => {
        if (state.settled || state.closing) return;
        state.closing = true;
        this._log('popup closed, checking the result channel once more');
        if (state.closedTimer !== null) env.clearInterval(state.closedTimer);
        state.closedTimer = null;
        if (state.pollTimer !== null) env.clearTimeout(state.pollTimer);
        state.pollTimer = null;
        if (state.pollController) state.pollController.abort();
        const answer = await askResultChannel(false);
        if (answer.status === 'success') return succeed(answer.result, 'result channel');
        if (answer.status === 'failed') return fail(answer.error, 'result channel');
        fail(new AuthError('window_closed'), 'popup closed', true);
      };

      // Anything unexpected still settles the promise, and never leaves timers behind.
      const guard = (promise) =>
        promise.catch(() => fail(new AuthError('unknown_error', 'The authorization flow failed unexpectedly.'), 'internal'));

      const isClosed = () => {
        try {
          return Boolean(popup.closed);
        } catch {
          return false;
        }
      };

      const lookup = this._describeIntegration(flow).then(
        () => {
          if (state.settled) return;
          if (!popup) return fail(new AuthError('blocked_by_browser'), 'window.open');
          if (isClosed()) return fail(new AuthError('window_closed'), 'popup closed before start', true);
          const url = this._connectUrl(flow, flowId);
          if (typeof win.addEventListener === 'function') win.addEventListener('message', state.onMessage);
          this._log(`popup to ${redactUrl(url)}`);
          try {
            if (popup.location && typeof popup.location.replace === 'function') popup.location.replace(url);
            else popup.location.href = url;
          } catch (error) {
            return fail(new AuthError('unknown_error', 'Could not send the popup to Terapi.'), 'popup navigation');
          }
          try {
            if (typeof popup.focus === 'function') popup.focus();
          } catch {
            // Focus is a courtesy.
          }
          state.closedTimer = env.setInterval(() => {
            if (!state.settled && !state.closing && isClosed()) guard(popupClosed());
          }, POPUP_CLOSED_CHECK_MS);
          guard(poll());
        },
        (error) => fail(error instanceof AuthError ? error : new AuthError('unknown_error'), 'integration lookup'),
      );
      guard(lookup);
    });
  }
}

function connectionResult(body) {
  if (!isPlainObject(body)) return null;
  const integrationId = body.integration_id;
  const connectionId = body.connection_id;
  if (!nonEmptyString(integrationId) || !nonEmptyString(connectionId)) return null;
  return { integrationId, connectionId };
}

/** Remove the terapi_* parameters of a redirect result from the address bar. */
function cleanAddressBar(win) {
  if (!win || !win.location || !win.history || typeof win.history.replaceState !== 'function') return;
  let url;
  try {
    url = new URL(win.location.href);
  } catch {
    return;
  }
  const keys = [...url.searchParams.keys()].filter((key) => key.startsWith(REDIRECT_PARAM_PREFIX));
  if (!keys.length) return;
  for (const key of new Set(keys)) url.searchParams.delete(key);
  try {
    win.history.replaceState(win.history.state, '', url.toString());
  } catch {
    // Some sandboxed frames forbid it; the result was read anyway.
  }
}

Terapi.AuthError = AuthError;

export { Terapi, AuthError };
export default Terapi;
