import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

import { buildGlobal, OUTPUT_PATH, SOURCE_PATH } from '../scripts/build-global.mjs';

const committed = readFileSync(OUTPUT_PATH, 'utf8');

test('the committed dist/terapi.global.js is built from the current src/terapi.js', () => {
  const expected = buildGlobal(readFileSync(SOURCE_PATH, 'utf8'));
  assert.ok(committed === expected, 'dist/terapi.global.js is out of date: run node scripts/build-global.mjs');
});

test('package.json points at the module, its types and the classic build', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  assert.equal(pkg.name, '@terapihq/frontend');
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.types, './src/terapi.d.ts');
  assert.equal(pkg.exports['.'].import, './src/terapi.js');
  assert.equal(pkg.exports['.'].types, './src/terapi.d.ts');
  assert.equal(pkg.exports['./global'], './dist/terapi.global.js');
  for (const file of [pkg.types, pkg.exports['.'].import, pkg.exports['./global']]) {
    assert.ok(readFileSync(new URL(`../${file}`, import.meta.url), 'utf8').length > 0, file);
  }
});

function loadClassic({ scriptSrc, pageHref = 'https://app.example.com/page' }) {
  const page = new URL(pageHref);
  const window = {
    location: { href: page.href, origin: page.origin },
  };
  const context = vm.createContext({
    window,
    document: { currentScript: scriptSrc === undefined ? null : { src: scriptSrc } },
    URL,
    URLSearchParams,
    AbortController,
    console,
  });
  vm.runInContext(committed, context, { filename: 'terapi.global.js' });
  return window;
}

test('the classic script defines window.Terapi with AuthError, no module syntax needed', () => {
  const window = loadClassic({ scriptSrc: 'https://terapi.example.com/sdk/terapi.global.js' });
  assert.equal(typeof window.Terapi, 'function');
  assert.equal(typeof window.Terapi.AuthError, 'function');
  assert.equal(typeof window.Terapi.handleRedirectResult, 'function');
  assert.equal(window.Terapi.name, 'Terapi');
});

test('the classic script defaults the host to the origin it was served from', () => {
  const window = loadClassic({ scriptSrc: 'https://terapi.example.com/sdk/terapi.global.js' });
  const terapi = new window.Terapi({ publicKey: 'pk' }, { window });
  assert.equal(terapi.host, 'https://terapi.example.com');
});

test('the classic script falls back to the page origin when inlined or bundled', () => {
  const window = loadClassic({ scriptSrc: undefined, pageHref: 'http://localhost:3003/connect' });
  const terapi = new window.Terapi({ publicKey: 'pk' }, { window });
  assert.equal(terapi.host, 'http://localhost:3003');
});

test('the classic script rejects a malformed host with AuthError', () => {
  const window = loadClassic({ scriptSrc: 'https://terapi.example.com/sdk/terapi.global.js' });
  assert.throws(
    () => new window.Terapi({ host: 'nope', publicKey: 'pk' }, { window }),
    (error) => error instanceof window.Terapi.AuthError && error.type === 'invalid_host_url',
  );
});
