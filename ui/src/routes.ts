/**
 * The UI's pages and their addresses. Routes live in the URL fragment (`#/status`), which
 * works the same from `uplink ui` and inside the desktop app, with relative asset paths.
 */
import type { Component } from 'svelte';

import AboutPage from './pages/AboutPage.svelte';
import AccountPage from './pages/AccountPage.svelte';
import ActivityPage from './pages/ActivityPage.svelte';
import AppsPage from './pages/AppsPage.svelte';
import DiagnosticsPage from './pages/DiagnosticsPage.svelte';
import SourcesPage from './pages/SourcesPage.svelte';
import StatusPage from './pages/StatusPage.svelte';

/** `wide`: a page of tables that uses the whole width beside the navigation. */
export type Route = { path: string; title: string; page: Component; wide?: boolean };

export const routes: Route[] = [
  { path: '/status', title: 'Status', page: StatusPage },
  { path: '/sources', title: 'Data sources', page: SourcesPage },
  { path: '/apps', title: 'Apps', page: AppsPage },
  { path: '/activity', title: 'Activity', page: ActivityPage, wide: true },
  { path: '/diagnostics', title: 'Diagnostics', page: DiagnosticsPage },
  { path: '/account', title: 'Account', page: AccountPage },
  { path: '/about', title: 'About', page: AboutPage },
];

/** The page of one data source, `#/sources/<name>`: not in the navigation, reached from Data sources. */
const SOURCE_PAGE = /^#?\/sources\/(.+)$/;

/** The data source a fragment names (`#/sources/<name>`), or `null` for any other page. */
export function sourceNameIn(hash: string): string | null {
  const match = SOURCE_PAGE.exec(hash);
  if (!match) {
    return null;
  }
  try {
    return decodeURIComponent(match[1]!);
  } catch {
    return match[1]!;
  }
}

/** The link to a data source's page. */
export function sourceHref(name: string): string {
  return `#/sources/${encodeURIComponent(name)}`;
}

/** Where an empty fragment leads. */
export const homeRoute: Route = routes[0]!;

/** The route a fragment names, or `undefined` if there is no such page. */
export function routeFor(hash: string): Route | undefined {
  const path = hash.replace(/^#/, '');
  return path === '' || path === '/' ? homeRoute : routes.find((route) => route.path === path);
}

/** The link to a route. */
export function hrefFor(route: Route): string {
  return `#${route.path}`;
}
