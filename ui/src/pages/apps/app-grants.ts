/**
 * The status's grants turned around for the Apps page: the runtime lists apps per data source,
 * people think per app. Apps sort by name, their data sources by name.
 */
import type { ControlStatus } from '../../lib/contract';

export type AppGrant = {
  source: string;
  userId: string;
  /** Who granted it, for people: their name, else (from an older hub) their id. */
  grantedBy: string;
  scopes: string[];
  grantedAt: string;
  lastUsedAt: string | null;
};

export type AppView = { appId: string; appName: string; blocked: boolean; grants: AppGrant[] };

/** Every app with a grant, with its grants and whether this site blocks it. */
export function appsOf(status: ControlStatus): AppView[] {
  const blocked = new Set(status.connector.policy.blockedApps);
  const apps = new Map<string, AppView>();
  for (const source of status.connector.sources) {
    for (const app of source.apps) {
      let view = apps.get(app.appId);
      if (!view) {
        view = { appId: app.appId, appName: app.appName, blocked: blocked.has(app.appId), grants: [] };
        apps.set(app.appId, view);
      }
      view.blocked ||= app.blockedOnSite;
      view.grants.push({
        source: source.name,
        userId: app.userId,
        grantedBy: app.userName ?? app.userId,
        scopes: app.scopes,
        grantedAt: app.grantedAt,
        lastUsedAt: app.lastUsedAt,
      });
    }
  }
  const byName = (a: string, b: string) => a.localeCompare(b);
  return [...apps.values()]
    .map((app) => ({ ...app, grants: app.grants.sort((a, b) => byName(a.source, b.source)) }))
    .sort((a, b) => byName(a.appName, b.appName) || byName(a.appId, b.appId));
}

/** An app's name as the status knows it, or its id. */
export function appNameOf(status: ControlStatus, appId: string): string {
  for (const source of status.connector.sources) {
    const app = source.apps.find((a) => a.appId === appId);
    if (app) {
      return app.appName;
    }
  }
  return appId;
}
