/**
 * Provider metadata: OIDC discovery (OpenID Connect Discovery 1.0 §4) or static endpoints from
 * configuration. Discovered documents are cached per process; a failed fetch is not cached.
 */
import type { Provider } from '../config/parse.js';
import { isSecureOrLoopback, parseUrl } from '../config/urls.js';
import { UpstreamMalformedError } from '../errors.js';
import { checkOAuthStatus, parseJsonObject, upstreamRequest, type HttpOptions } from './http.js';

export interface ProviderMetadata {
  readonly issuer: string | undefined;
  readonly authorizationEndpoint: string;
  readonly tokenEndpoint: string;
  readonly jwksUri: string | undefined;
  readonly revocationEndpoint: string | undefined;
  readonly endSessionEndpoint: string | undefined;
  readonly userinfoEndpoint: string | undefined;
  /** ID token signing algorithms the provider advertises (never `none`). */
  readonly idTokenSigningAlgs: readonly string[];
  /** RFC 9207: the provider always sends `iss` with authorization responses. */
  readonly issParameterSupported: boolean;
  /** The whole discovery document, for provider-specific extensions. */
  readonly document: Readonly<Record<string, unknown>>;
}

export interface MetadataCache {
  get(provider: Provider): Promise<ProviderMetadata>;
  /**
   * The external login providers a Milestone XProtect IDP lists at its discovery document's
   * `external_providers_uri` (`[{"loginProviderId", "displayName"}]`); empty when it has none.
   */
  externalProviders(provider: Provider): Promise<readonly ExternalProvider[]>;
  clear(): void;
}

export interface ExternalProvider {
  readonly loginProviderId: string;
  readonly displayName: string | undefined;
}

const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export function createMetadataCache(options: HttpOptions & { maxAgeMs?: number; now?: () => number; forProvider?: (name: string) => HttpOptions } = {}): MetadataCache {
  const maxAgeMs = options.maxAgeMs ?? 24 * 3600_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { at: number; value: Promise<ProviderMetadata> }>();
  const external = new Map<string, { at: number; value: Promise<readonly ExternalProvider[]> }>();
  return {
    get(provider) {
      const hit = cache.get(provider.name);
      if (hit && now() - hit.at < maxAgeMs) return hit.value;
      const value = provider.discovery ? discover(provider, options.forProvider?.(provider.name) ?? options) : Promise.resolve(staticMetadata(provider));
      const entry = { at: now(), value };
      cache.set(provider.name, entry);
      value.catch(() => cache.get(provider.name) === entry && cache.delete(provider.name));
      return value;
    },
    externalProviders(provider) {
      const hit = external.get(provider.name);
      // The list changes when an administrator edits it: re-read it every 10 minutes.
      if (hit && now() - hit.at < 10 * 60_000) return hit.value;
      const value = this.get(provider).then((m) => fetchExternalProviders(m, options.forProvider?.(provider.name) ?? options));
      const entry = { at: now(), value };
      external.set(provider.name, entry);
      value.catch(() => external.get(provider.name) === entry && external.delete(provider.name));
      return value;
    },
    clear() {
      cache.clear();
      external.clear();
    },
  };
}

async function fetchExternalProviders(m: ProviderMetadata, options: HttpOptions): Promise<readonly ExternalProvider[]> {
  const uri = m.document['external_providers_uri'];
  if (uri === undefined) return [];
  const u = typeof uri === 'string' ? parseUrl(uri) : undefined;
  if (!u || !isSecureOrLoopback(u)) throw new UpstreamMalformedError('the discovery document\'s "external_providers_uri" is not an https URL');
  const res = await upstreamRequest(u.href, { headers: { accept: 'application/json' } }, { timeoutMs: 5_000, ...options });
  checkOAuthStatus(res, 'external providers list');
  let list: unknown;
  try {
    list = JSON.parse(res.text);
  } catch (cause) {
    throw new UpstreamMalformedError('the external providers list is not JSON', { cause });
  }
  if (!Array.isArray(list)) throw new UpstreamMalformedError('the external providers list is not a JSON array');
  return list.flatMap((e: unknown) => {
    // Milestone's clients read this list case-insensitively (.NET); accept either spelling.
    const entry = (e ?? {}) as Record<string, unknown>;
    const id = entry['loginProviderId'] ?? entry['LoginProviderId'];
    const name = entry['displayName'] ?? entry['DisplayName'];
    return typeof id === 'string' && id !== '' ? [{ loginProviderId: id, displayName: typeof name === 'string' ? name : undefined }] : [];
  });
}

function staticMetadata(p: Provider): ProviderMetadata {
  return Object.freeze({
    issuer: p.issuer,
    authorizationEndpoint: p.authorizationEndpoint!,
    tokenEndpoint: p.tokenEndpoint!,
    jwksUri: p.jwksUri,
    revocationEndpoint: p.revocationEndpoint,
    endSessionEndpoint: p.endSessionEndpoint,
    userinfoEndpoint: p.userinfoEndpoint,
    idTokenSigningAlgs: ['RS256'],
    issParameterSupported: false,
    document: {},
  });
}

async function discover(p: Provider, options: HttpOptions): Promise<ProviderMetadata> {
  const issuer = p.issuer!;
  // OpenID Connect Discovery §4: append to the issuer, keeping its path.
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const res = await upstreamRequest(url, { headers: { accept: 'application/json' } }, { timeoutMs: 5_000, ...options });
  checkOAuthStatus(res, 'discovery endpoint');
  const doc = parseJsonObject(res, 'discovery document');
  // OpenID Connect Discovery §4.3: the issuer must be exactly the one configured.
  if (doc['issuer'] !== issuer) throw new UpstreamMalformedError(`the discovery document's "issuer" does not equal the configured issuer`);
  const endpoint = (key: string, required: boolean): string | undefined => {
    const configured = { authorization_endpoint: p.authorizationEndpoint, token_endpoint: p.tokenEndpoint, jwks_uri: p.jwksUri, revocation_endpoint: p.revocationEndpoint, end_session_endpoint: p.endSessionEndpoint, userinfo_endpoint: p.userinfoEndpoint }[key];
    const value = configured ?? doc[key];
    if (value === undefined && !required) return undefined;
    const u = typeof value === 'string' ? parseUrl(value) : undefined;
    if (!u || !isSecureOrLoopback(u)) throw new UpstreamMalformedError(`the discovery document's "${key}" is missing or not an https URL`);
    return u.href;
  };
  const algs = Array.isArray(doc['id_token_signing_alg_values_supported'])
    ? (doc['id_token_signing_alg_values_supported'] as unknown[]).filter((a): a is string => typeof a === 'string' && ASYMMETRIC_ALGS.includes(a))
    : ['RS256'];
  return Object.freeze({
    issuer,
    authorizationEndpoint: endpoint('authorization_endpoint', true)!,
    tokenEndpoint: endpoint('token_endpoint', true)!,
    jwksUri: endpoint('jwks_uri', p.openid),
    revocationEndpoint: endpoint('revocation_endpoint', false),
    endSessionEndpoint: endpoint('end_session_endpoint', false),
    userinfoEndpoint: endpoint('userinfo_endpoint', false),
    idTokenSigningAlgs: algs.length > 0 ? algs : ['RS256'],
    issParameterSupported: doc['authorization_response_iss_parameter_supported'] === true,
    document: Object.freeze(doc),
  });
}
