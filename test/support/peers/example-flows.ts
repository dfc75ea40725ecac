/**
 * Flow helpers for the provider tests: the broker configuration is taken from the documented
 * example in `examples/providers/<name>.json` and pointed at the local peer, so the tests prove
 * that the example itself works, with only the URLs and the secret source swapped.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { go, jar, loginAtProvider, NATIVE_REDIRECT, pkce, type Harness, type Jar, type NativeLogin } from '../harness.js';

export const EXAMPLES_DIR = fileURLToPath(new URL('../../../examples/providers/', import.meta.url));

/** The whole example document. */
export function exampleDocument(name: string): Record<string, any> {
  return JSON.parse(readFileSync(`${EXAMPLES_DIR}${name}.json`, 'utf8')) as Record<string, any>;
}

/** The example's provider entry, ready to be edited for a local run. */
export function exampleProvider(name: string): Record<string, any> {
  const provider = exampleDocument(name)['providers']?.[name];
  if (!provider) throw new Error(`examples/providers/${name}.json has no provider "${name}"`);
  return structuredClone(provider) as Record<string, any>;
}

/** Makes `provider` the only provider of the harness document, used by every client. */
export function useProvider(doc: Record<string, any>, name: string, provider: Record<string, any>): void {
  doc['providers'] = { [name]: provider };
  for (const client of Object.values(doc['clients'] as Record<string, { providers: string[] }>)) client.providers = [name];
}

/**
 * The example's provider `name` pointed at a local OIDC peer (attached to the broker's
 * `publicUrl`; its issuer), with `overrides` (given the example's block) on top, as the harness
 * document's only provider.
 */
export function useExampleProvider(
  doc: Record<string, any>,
  name: string,
  peer: { readonly issuer: string; attach(publicUrl: string): void },
  overrides: (example: Record<string, any>) => Record<string, unknown> = () => ({}),
): void {
  peer.attach(doc['publicUrl']);
  const example = exampleProvider(name);
  useProvider(doc, name, { ...example, issuer: peer.issuer, ...overrides(example) });
}

export interface StartedLogin {
  readonly jar: Jar;
  readonly verifier: string;
  /** The broker's `/login` answer. */
  readonly status: number;
  /** Where the broker sent the browser: the provider's authorization request, or the app. */
  readonly location: URL;
}

/** A native app's `GET /login`, stopped at the broker's redirect. */
export async function startNativeLogin(h: Harness, extra: Record<string, string> = {}): Promise<StartedLogin> {
  const j = jar();
  const { verifier, challenge } = pkce();
  const res = await go(j, `${h.url}/login?${new URLSearchParams({
    client_id: 'app', redirect_uri: NATIVE_REDIRECT, state: 'app-state', code_challenge: challenge, code_challenge_method: 'S256', ...extra,
  })}`);
  return { jar: j, verifier, status: res.status, location: new URL(res.headers.get('location') ?? 'x:/') };
}

/** Signs in at the provider and follows the callback to the app's redirect. */
export async function finishNativeLogin(h: Harness, started: StartedLogin): Promise<NativeLogin> {
  const callback = await loginAtProvider(started.jar, started.location.href, `${h.url}/callback`);
  const cb = await go(started.jar, callback);
  const redirect = new URL(cb.headers.get('location') ?? 'x:/');
  return { code: redirect.searchParams.get('code') ?? '', verifier: started.verifier, redirect, jar: started.jar };
}

/** Signs in at the provider and stops at the redirect to the broker's callback (not followed). */
export async function authorizationResponse(h: Harness, started: StartedLogin): Promise<URL> {
  return new URL(await loginAtProvider(started.jar, started.location.href, `${h.url}/callback`));
}
