/**
 * The UI's pages and their addresses. Routes live in the URL fragment (`#/about`), which
 * works the same from `uplink ui` and inside the desktop app, with relative asset paths.
 */
import type { Component } from 'svelte';

import AboutPage from './pages/AboutPage.svelte';

export type Route = { path: string; title: string; page: Component };

export const routes: Route[] = [{ path: '/about', title: 'About', page: AboutPage }];

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
