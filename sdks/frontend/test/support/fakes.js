// Fakes for the browser globals the SDK uses: a clock, a window with popups, and fetch.
// Nothing here touches the network or real timers.

/** Let every pending promise callback run. */
export function flush() {
  return new Promise((resolve) => setImmediate(resolve));
}

export class FakeClock {
  constructor() {
    this.now = 0;
    this.nextId = 1;
    this.timers = new Map();
    this.setTimeout = (fn, ms = 0) => this._add(fn, ms, false);
    this.clearTimeout = (id) => this.timers.delete(id);
    this.setInterval = (fn, ms = 0) => this._add(fn, ms, true);
    this.clearInterval = (id) => this.timers.delete(id);
  }

  _add(fn, ms, repeat) {
    const id = this.nextId++;
    this.timers.set(id, { fn, ms: Math.max(0, ms), at: this.now + Math.max(0, ms), repeat });
    return id;
  }

  /** How many timeouts and intervals are still scheduled. */
  get pending() {
    return this.timers.size;
  }

  /** Move time forward by `ms`, running due timers in order and settling promises between them. */
  async tick(ms) {
    const target = this.now + ms;
    await flush();
    for (;;) {
      let nextId = null;
      let next = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= target && (next === null || timer.at < next.at)) {
          nextId = id;
          next = timer;
        }
      }
      if (next === null) break;
      this.now = next.at;
      if (next.repeat) next.at += Math.max(1, next.ms);
      else this.timers.delete(nextId);
      next.fn();
      await flush();
    }
    this.now = target;
    await flush();
  }
}

export class FakePopup {
  constructor(url, name, features) {
    this.openedWith = { url, name, features };
    this.closed = false;
    this.focused = false;
    this.closeCalls = 0;
    this.navigations = [];
    const popup = this;
    this.location = {
      href: url,
      replace(next) {
        popup.navigations.push(next);
        this.href = next;
      },
    };
  }

  get url() {
    return this.location.href;
  }

  focus() {
    this.focused = true;
  }

  close() {
    this.closeCalls += 1;
    this.closed = true;
  }
}

export class FakeWindow {
  constructor({ href = 'https://app.example.com/settings/integrations?tab=crm', block = false } = {}) {
    const url = new URL(href);
    const win = this;
    this.assigned = [];
    this.location = {
      href: url.href,
      origin: url.origin,
      assign(next) {
        win.assigned.push(next);
      },
    };
    this.screenX = 100;
    this.screenY = 40;
    this.outerWidth = 1300;
    this.outerHeight = 1000;
    this.screen = { width: 1920, height: 1080, availWidth: 1920, availHeight: 1040 };
    this.block = block;
    this.popups = [];
    this.openCalls = [];
    this.listeners = new Map();
    this.replacedStates = [];
    this.history = {
      state: { page: 1 },
      replaceState(state, title, next) {
        win.replacedStates.push({ state, title, url: next });
        const nextUrl = new URL(next, win.location.href);
        win.location.href = nextUrl.href;
      },
    };
  }

  open(url, name, features) {
    this.openCalls.push({ url, name, features });
    if (this.block) return null;
    const popup = new FakePopup(url, name, features);
    this.popups.push(popup);
    return popup;
  }

  get popup() {
    return this.popups[this.popups.length - 1];
  }

  addEventListener(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(listener);
  }

  removeEventListener(type, listener) {
    const set = this.listeners.get(type);
    if (set) set.delete(listener);
  }

  listenerCount(type) {
    return this.listeners.has(type) ? this.listeners.get(type).size : 0;
  }

  /** Deliver a 'message' event as window.postMessage from another window would. */
  postMessageFrom(origin, data) {
    for (const listener of [...(this.listeners.get('message') || [])]) {
      listener({ type: 'message', origin, data, source: null });
    }
  }
}

export function jsonResponse(status, body) {
  return new Response(body === undefined ? '' : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });
}

/**
 * A fetch that answers from `routes`: each route is [method, pathPrefix, handler], where the
 * handler gets (url: URL, init, call) and returns a Response, a promise of one, or throws.
 * Unmatched requests fail the test loudly. Requests honour init.signal like the real fetch.
 */
export class FakeFetch {
  constructor(routes = []) {
    this.routes = routes;
    this.calls = [];
    this.fetch = (input, init = {}) => this._handle(String(input), init);
  }

  on(method, pathPrefix, handler) {
    this.routes.unshift([method, pathPrefix, handler]);
    return this;
  }

  callsTo(pathPrefix) {
    return this.calls.filter((call) => call.url.pathname.startsWith(pathPrefix));
  }

  _handle(input, init) {
    const url = new URL(input);
    const method = (init.method || 'GET').toUpperCase();
    const call = { input, url, method, init, aborted: false };
    this.calls.push(call);
    const route = this.routes.find(([m, prefix]) => m === method && url.pathname.startsWith(prefix));
    if (!route) return Promise.reject(new Error(`unexpected request ${method} ${input}`));
    return new Promise((resolve, reject) => {
      const signal = init.signal;
      const onAbort = () => {
        call.aborted = true;
        reject(new DOMException('The operation was aborted.', 'AbortError'));
      };
      if (signal) {
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
      }
      Promise.resolve()
        .then(() => route[2](url, init, call))
        .then(resolve, reject)
        .finally(() => signal && signal.removeEventListener('abort', onAbort));
    });
  }
}

/** A promise with its resolve and reject, for answers the test releases later. */
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Everything a Terapi instance needs, wired together. */
export function harness({ href, block = false, routes = [], uuids } = {}) {
  const clock = new FakeClock();
  const win = new FakeWindow({ href, block });
  const fetch = new FakeFetch(routes);
  const logs = [];
  let n = 0;
  const ids = uuids || ['11111111-2222-4333-8444-555555555555', '66666666-7777-4888-9999-aaaaaaaaaaaa'];
  const env = {
    window: win,
    fetch: fetch.fetch,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    setInterval: clock.setInterval,
    clearInterval: clock.clearInterval,
    randomUUID: () => ids[n++ % ids.length],
    console: { debug: (...args) => logs.push(args), log: (...args) => logs.push(args) },
  };
  return { clock, win, fetch, env, logs };
}

/** Records how a promise settles without waiting for it. */
export function track(promise) {
  const state = { settled: false, value: undefined, error: undefined, count: 0 };
  promise.then(
    (value) => {
      state.settled = true;
      state.count += 1;
      state.value = value;
    },
    (error) => {
      state.settled = true;
      state.count += 1;
      state.error = error;
    },
  );
  return state;
}
