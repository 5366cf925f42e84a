/**
 * A stand-in for the control surface in component tests: Tauri's IPC mocked with events on,
 * each command answered by a handler, every call recorded, and status pushes like the runtime's.
 */
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { emit } from '@tauri-apps/api/event';
import { tick } from 'svelte';

import type { ConnectorStatus, ControlStatus, SourceStatus, ConsentedApp } from '../lib/contract';
import { resetSharedStatus } from '../lib/status.svelte';

export type Handler = (args: Record<string, unknown>) => unknown;

/** A status with a connected local link and nothing configured beyond it, changed by `patch`. */
export function controlStatus(
  patch: Partial<Omit<ControlStatus, 'connector'>> & { connector?: Partial<ConnectorStatus> } = {},
): ControlStatus {
  const connector: ConnectorStatus = {
    link: 'connected',
    hubUrl: 'https://127.0.0.1:7443/',
    connectorId: 'con_1',
    siteName: 'plant-pc',
    transport: 'WebSockets',
    skippedTransports: [],
    connectedSince: '2026-11-25T10:00:00Z',
    roundTripMs: 3.2,
    reconnects: 0,
    lastError: null,
    sources: [],
    revokedApps: [],
    policy: { blockedApps: [], blockedSources: [] },
    recentActivity: [],
    activeQueries: 0,
    pid: 42,
    updatedAt: '2026-11-25T10:00:01Z',
    ...patch.connector,
  };
  return {
    configured: true,
    paused: false,
    transportPreference: 'automatic',
    localHub: null,
    linkHistory: [],
    signIn: null,
    signInError: null,
    dataDir: '/var/lib/uplink',
    ...patch,
    connector,
  };
}

/** A data source with sensible defaults. */
export function source(name: string, patch: Partial<SourceStatus> = {}): SourceStatus {
  return {
    name,
    kind: 'simulated',
    description: '',
    health: { state: 'ok', issueCount: 0 },
    hubId: `src_${name}`,
    tagCount: 12,
    blockedOnSite: false,
    apps: [],
    recording: null,
    ...patch,
  };
}

/** A grant of `appId` with sensible defaults. */
export function grant(appId: string, appName: string, patch: Partial<ConsentedApp> = {}): ConsentedApp {
  return {
    appId,
    appName,
    userId: 'usr_ada',
    userName: null,
    scopes: ['data.read'],
    grantedAt: '2026-11-20T09:00:00Z',
    lastUsedAt: null,
    blockedOnSite: false,
    ...patch,
  };
}

export type Call = { command: string; args: Record<string, unknown> };

/**
 * Mocks the control surface: `status` answers `initial`, other commands go to `handlers`
 * (a command without one fails the test loudly). Returns the calls made, in order.
 */
export function mockControl(initial: ControlStatus, handlers: Record<string, Handler> = {}): Call[] {
  const calls: Call[] = [];
  mockIPC(
    (command, payload) => {
      const args = (payload ?? {}) as Record<string, unknown>;
      calls.push({ command, args });
      if (command === 'status' && !handlers.status) {
        return initial;
      }
      const handler = handlers[command];
      if (!handler) {
        throw new Error(`no handler for command ${command}`);
      }
      return handler(args);
    },
    { shouldMockEvents: true },
  );
  return calls;
}

/** Pushes a status as the runtime does, and lets the UI update. */
export async function pushStatus(status: ControlStatus): Promise<void> {
  await emit('status', status);
  await tick();
}

/** Undoes the mocks and forgets the shared status store. */
export function resetControl(): void {
  resetSharedStatus();
  clearMocks();
}

/** Only the commands other than the store's own `status` load and event plumbing. */
export function commands(calls: Call[]): Call[] {
  return calls.filter((c) => c.command !== 'status' && !c.command.startsWith('plugin:event|'));
}
