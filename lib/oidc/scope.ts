/**
 * The scope an app asks the broker for at `/login` (CONTRACT.md v2): the broker's own OpenID
 * scopes, never forwarded to the provider (what the broker asks the provider for is the
 * provider's `scopes`).
 */
import type { Client, Provider } from '../config/parse.js';

export const APP_SCOPES = ['openid', 'profile', 'email', 'offline_access'] as const;
export type AppScope = (typeof APP_SCOPES)[number];

/** OIDC Core §5.4: the claims each scope adds to the broker's ID token, when the provider gave them. */
export const SCOPE_CLAIMS = {
  profile: ['name', 'given_name', 'family_name', 'preferred_username', 'picture', 'locale'],
  email: ['email', 'email_verified'],
} as const satisfies Partial<Record<AppScope, readonly string[]>>;

export type ScopeResult =
  | { readonly ok: true; readonly scope: readonly AppScope[] }
  | { readonly ok: false; readonly description: string };

/**
 * The scope granted for a login: the requested scope tokens (RFC 6749 §3.3, space-separated,
 * order and repeats ignored) if every one is known, in the order of `APP_SCOPES`. Without a
 * `scope`, a web login gets `openid`, a native login none. `openid` needs a provider that
 * proves who the user is (an ID token): for one without it the broker cannot name a subject, so
 * an explicit `openid` is `invalid_scope` and a web login's default is empty.
 */
export function grantScope(requested: string | undefined, client: Client, provider: Provider): ScopeResult {
  if (requested === undefined) return { ok: true, scope: client.type === 'web' && provider.openid ? ['openid'] : [] };
  const tokens = requested.split(' ').filter((t) => t !== '');
  const unknown = tokens.find((t) => !(APP_SCOPES as readonly string[]).includes(t));
  if (unknown !== undefined) return { ok: false, description: `"scope" may hold only ${APP_SCOPES.join(', ')}` };
  if (tokens.includes('openid') && !provider.openid) {
    return { ok: false, description: 'this provider gives no ID token, so the broker cannot issue one ("openid")' };
  }
  return { ok: true, scope: APP_SCOPES.filter((s) => tokens.includes(s)) };
}

export const scopeString = (scope: readonly AppScope[]) => scope.join(' ');

export function parseScopeString(value: string): AppScope[] {
  const tokens = value.split(' ');
  return APP_SCOPES.filter((s) => tokens.includes(s));
}
