import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [svelte(), svelteTesting()],
  // Relative asset paths: the same build is served by `uplink ui` over HTTP and embedded in
  // the desktop app, and must not assume where it is mounted.
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Everything ships as files: the served policy forbids inline script, and nothing is
    // fetched from elsewhere.
    assetsInlineLimit: 0,
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts'],
    restoreMocks: true,
    unstubGlobals: true,
  },
});
