import { beforeEach, expect, test } from 'vitest';

import { accessToken, adoptAccessToken, forgetAccessToken } from './access-token';

beforeEach(() => {
  forgetAccessToken();
  window.history.replaceState(null, '', '/');
});

test('the token moves from the fragment into this tab’s storage and leaves the URL', () => {
  window.history.replaceState(null, '', '/?lang=en#token=abc123');
  const entries = window.history.length;

  expect(adoptAccessToken()).toBe(true);

  expect(accessToken()).toBe('abc123');
  expect(window.sessionStorage.getItem('uplink.accessToken')).toBe('abc123');
  expect(window.location.href).not.toContain('abc123');
  expect(window.location.hash).toBe('');
  expect(window.location.search).toBe('?lang=en');
  expect(window.history.length).toBe(entries); // replaced, not a new history entry
});

test('other fragment parts stay', () => {
  window.history.replaceState(null, '', '/#token=abc123&view=compact');
  adoptAccessToken();
  expect(window.location.hash).toBe('#view=compact');
});

test('a page without a token keeps the one it has and its route', () => {
  window.history.replaceState(null, '', '/#token=first');
  adoptAccessToken();
  window.history.replaceState(null, '', '/#/about');

  expect(adoptAccessToken()).toBe(false);
  expect(accessToken()).toBe('first');
  expect(window.location.hash).toBe('#/about');
});

test('no token at all reads as null', () => {
  expect(accessToken()).toBeNull();
});
