/**
 * The per-run access token of the browser UI. `uplink ui` prints a link whose fragment
 * carries it (`#token=…`); fragments never leave the browser, so the token is in no request
 * line or server log. On start the page moves it into sessionStorage (this tab only, gone
 * when the tab closes) and takes it out of the address bar and the history entry, so it is
 * not shared by copying the URL nor kept in history.
 */

const STORAGE_KEY = 'uplink.accessToken';

// Kept too in memory: storage can be unavailable (privacy modes), and the page must still work.
let remembered: string | null = null;

/**
 * Adopts the token from the current URL's fragment, if there is one, and removes it from the
 * visible URL. Returns whether a token was found.
 */
export function adoptAccessToken(): boolean {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const token = fragment.get('token');
  if (token === null) {
    return false;
  }
  remembered = token;
  try {
    window.sessionStorage.setItem(STORAGE_KEY, token);
  } catch {
    // Memory alone then: the token lasts until the page reloads.
  }
  fragment.delete('token');
  const rest = fragment.toString();
  const { pathname, search } = window.location;
  window.history.replaceState(window.history.state, '', `${pathname}${search}${rest ? `#${rest}` : ''}`);
  return true;
}

/** The token this tab was opened with, or `null` if it has none. */
export function accessToken(): string | null {
  try {
    return window.sessionStorage.getItem(STORAGE_KEY) ?? remembered;
  } catch {
    return remembered;
  }
}

/** Forgets the token (used by tests, and by a future "sign out of this page"). */
export function forgetAccessToken(): void {
  remembered = null;
  try {
    window.sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Nothing stored then.
  }
}
