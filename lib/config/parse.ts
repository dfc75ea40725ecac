/**
 * Validates a configuration document: first its shape (valibot), then the rules between fields.
 * Every problem is collected with its path, so one run names every bad field.
 */
import * as v from 'valibot';
import { API_TIMEOUT_SECONDS, DEFAULT_BODY_BYTES, MAX_BODY_BYTES } from '../proxy/limits.js';
import { deepFreeze, preparedConfig } from './prepared.js';
import { schemas, type ClientConfig, type ProviderConfig, type RawConfig, type SecretRef, type StorageConfig, type TtlConfig } from './schema.js';
import { isSecureOrLoopback, nativeRedirectKind, parseUrl } from './urls.js';

/**
 * node:fs's `readFileSync`, taken without importing node:fs as an ES module: the module's ES
 * facade reads every export, and its lazy ones (`promises`, the streams) load about 1.4 ms of
 * Node.js at every cold start that the two reads here never use.
 */
const readFileSync = (file: string) => process.getBuiltinModule('node:fs').readFileSync(file, 'utf8');

export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    super(`invalid broker configuration:\n${issues.map((i) => `  - ${i.path || '(document)'}: ${i.message}`).join('\n')}`);
    this.issues = issues;
  }
}

export interface Provider extends ProviderConfig {
  readonly name: string;
  /** `issuer` set and no static endpoints: metadata comes from OIDC discovery. */
  readonly discovery: boolean;
  /** `openid` is among the scopes, so every login carries an ID token to validate. */
  readonly openid: boolean;
  readonly responseMode: 'query' | 'form_post';
}

export interface Client extends ClientConfig {
  readonly id: string;
}

/** An API that web clients call through the broker's proxy (`/api/{name}/{path}`). */
export interface Api {
  readonly name: string;
  /** The base URL without a trailing slash: a proxied path goes below it. */
  readonly url: string;
  /** The provider whose access tokens the API takes. */
  readonly provider: string;
  /** The largest request body and answer body, each way. */
  readonly maxBodyBytes: number;
  /** How long the broker waits for the API's answer. */
  readonly timeoutMs: number;
}

export interface Config {
  /** The broker's own origin, without a trailing slash; its RFC 8414 / RFC 9207 issuer. */
  readonly publicUrl: string;
  /** Whether cookies may use `Secure` and the `__Host-` prefix (an https publicUrl). */
  readonly secureCookies: boolean;
  readonly providers: Readonly<Record<string, Provider>>;
  readonly clients: Readonly<Record<string, Client>>;
  readonly tokenEncryptionKeys: SecretRef | undefined;
  /** The ID-token signing key ring; locally, generated per process when absent. */
  readonly signingKeys: SecretRef | undefined;
  readonly ttl: Readonly<TtlConfig>;
  /** How the table's values are written. */
  readonly storage: Readonly<StorageConfig>;
  /** The APIs of the proxy, by name. */
  readonly apis: Readonly<Record<string, Api>>;
  /** Every origin some client allows, for CORS preflights. */
  readonly allowedOrigins: ReadonlySet<string>;
}

export interface ParseOptions {
  /** In AWS Lambda: secrets only from Secrets Manager, and both key rings are required. */
  readonly runtime: 'lambda' | 'local';
  /**
   * The environment the local runner starts in: every `{"env": ...}` secret reference must name a
   * variable set in it, or start-up stops naming the path (rather than the first login failing).
   * Absent: references are checked for shape only (`config check`, tests).
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** Parameters the broker sets itself on an authorization request; config may not set them. */
export const RESERVED_AUTHORIZATION_PARAMS = new Set([
  'response_type', 'client_id', 'redirect_uri', 'state', 'nonce', 'code_challenge', 'code_challenge_method', 'scope',
]);

/** Parameters an app may not pass through /login: they would steer checks the broker does not make. */
const UNFORWARDABLE_PARAMS = new Set(['provider', 'response_mode', 'request', 'request_uri', 'max_age', 'client_assertion', 'client_secret']);
const CLIENT_CREDENTIAL_PARAMS = new Set(['client_secret', 'client_assertion', 'client_assertion_type']);

export function parseConfig(input: unknown, options: ParseOptions): Config {
  const { ConfigSchema } = schemas();
  let result = v.safeParse(ConfigSchema, input);
  const issues: ConfigIssue[] = [];
  const bad = (path: string, message: string) => issues.push({ path, message });
  if (!result.success) {
    const shape = result.issues.map((i) => ({ path: v.getDotPath(i) ?? '', message: readable(i) }));
    // Unknown fields alone must not hide the rest: drop them, check everything else, report all.
    const unknown = result.issues.filter(isUnknownField);
    if (unknown.length < result.issues.length) throw new ConfigError(shape);
    result = v.safeParse(ConfigSchema, withoutFields(input, unknown));
    if (!result.success) throw new ConfigError(shape);
    issues.push(...shape);
  }
  const raw = result.output;

  const publicUrl = parseUrl(raw.publicUrl);
  if (!publicUrl || !/^https?:$/.test(publicUrl.protocol)) bad('publicUrl', 'must be an absolute http(s) URL');
  else {
    if (!isSecureOrLoopback(publicUrl)) bad('publicUrl', 'must be https (http only on loopback)');
    if (publicUrl.pathname !== '/' || publicUrl.search || publicUrl.hash || publicUrl.username || publicUrl.password) {
      bad('publicUrl', 'must be an origin without path, query or credentials (e.g. https://auth.example.com)');
    }
  }
  const secureCookies = publicUrl?.protocol === 'https:';

  const secretRef = (path: string, ref: SecretRef | undefined) => {
    if (ref && options.runtime === 'lambda' && !('secretsManager' in ref)) {
      bad(path, 'in AWS Lambda a secret must come from Secrets Manager ({"secretsManager": ...})');
    } else if (ref && 'env' in ref && options.env && !options.env[ref.env]) {
      bad(path, `environment variable ${ref.env} is not set`);
    }
  };

  const providers: Record<string, Provider> = {};
  for (const [name, p] of Object.entries(raw.providers)) {
    const at = `providers.${name}`;
    for (const key of ['issuer', 'authorizationEndpoint', 'tokenEndpoint', 'jwksUri', 'revocationEndpoint', 'endSessionEndpoint', 'userinfoEndpoint', ] as const) {
      const value = p[key];
      if (value === undefined) continue;
      const u = parseUrl(value);
      if (!u || !/^https?:$/.test(u.protocol)) bad(`${at}.${key}`, 'must be an absolute http(s) URL');
      else if (!isSecureOrLoopback(u)) bad(`${at}.${key}`, 'must be https (http only on loopback)');
    }
    const hasStatic = p.authorizationEndpoint !== undefined || p.tokenEndpoint !== undefined;
    if (hasStatic && (p.authorizationEndpoint === undefined || p.tokenEndpoint === undefined)) {
      bad(`${at}.${p.authorizationEndpoint === undefined ? 'authorizationEndpoint' : 'tokenEndpoint'}`, 'static endpoints need both authorizationEndpoint and tokenEndpoint');
    }
    if (!hasStatic && p.issuer === undefined) bad(`${at}.issuer`, 'is required unless authorizationEndpoint and tokenEndpoint are given');
    const openid = p.scopes.includes('openid');
    if (openid && p.issuer === undefined) bad(`${at}.issuer`, 'is required with the openid scope (the ID token "iss" is checked against it)');
    if (openid && hasStatic && p.jwksUri === undefined) bad(`${at}.jwksUri`, 'is required with the openid scope and static endpoints');
    // A logout token names the provider's `sub` or `sid`, which only a validated ID token tells the broker.
    if (p.backchannelLogout && !openid) bad(`${at}.backchannelLogout`, 'needs the openid scope: sessions are found by the sub and sid of the provider\'s ID token');
    if (p.clientAuth === 'none' && p.clientSecret) bad(`${at}.clientSecret`, 'must be absent when clientAuth is "none"');
    if (p.clientAuth !== 'none' && !p.clientSecret) bad(`${at}.clientSecret`, `is required for clientAuth "${p.clientAuth}"`);
    if (p.clientAuth === 'none' && !p.pkce) bad(`${at}.pkce`, 'a public client (clientAuth "none") must use PKCE');
    secretRef(`${at}.clientSecret`, p.clientSecret);
    for (const key of Object.keys(p.authorizationParams)) {
      if (RESERVED_AUTHORIZATION_PARAMS.has(key)) bad(`${at}.authorizationParams.${key}`, 'is set by the broker and cannot be configured');
    }
    const responseMode = p.authorizationParams['response_mode'] ?? 'query';
    if (responseMode !== 'query' && responseMode !== 'form_post') {
      bad(`${at}.authorizationParams.response_mode`, 'must be "query" or "form_post": a code in a URL fragment never reaches a server');
    }
    for (const field of ['tokenParams', 'refreshParams'] as const) {
      for (const key of Object.keys(p[field])) {
        if (CLIENT_CREDENTIAL_PARAMS.has(key)) bad(`${at}.${field}.${key}`, 'client credentials come from clientSecret (Secrets Manager in AWS), never from here');
      }
    }
    p.forwardParams.forEach((key, i) => {
      if (RESERVED_AUTHORIZATION_PARAMS.has(key) || UNFORWARDABLE_PARAMS.has(key)) {
        bad(`${at}.forwardParams.${i}`, `"${key}" cannot be forwarded from apps`);
      }
    });
    if (p.downstreamLogin) {
      const u = parseUrl(p.downstreamLogin.url);
      if (!u || !isSecureOrLoopback(u)) bad(`${at}.downstreamLogin.url`, 'must be an https URL (http only on loopback)');
    }
    providers[name] = {
      ...p,
      name,
      discovery: p.issuer !== undefined && !hasStatic,
      openid,
      responseMode: responseMode === 'form_post' ? 'form_post' : 'query',
    };
  }

  const apis: Record<string, Api> = {};
  for (const [name, a] of Object.entries(raw.apis)) {
    const at = `apis.${name}`;
    const u = parseUrl(a.url);
    if (!u || !/^https?:$/.test(u.protocol)) bad(`${at}.url`, 'must be an absolute http(s) URL');
    else if (!isSecureOrLoopback(u)) bad(`${at}.url`, 'must be https (http only on loopback)');
    else if (u.search || u.hash || u.username || u.password || a.url.includes('?') || a.url.includes('#')) {
      bad(`${at}.url`, 'must have no query, fragment or credentials: the proxied path and query are appended to it');
    }
    if (!Object.hasOwn(raw.providers, a.provider)) bad(`${at}.provider`, `names no configured provider ("${a.provider}")`);
    if (a.maxBodyBytes !== undefined && a.maxBodyBytes > MAX_BODY_BYTES) {
      bad(`${at}.maxBodyBytes`, `must be at most ${MAX_BODY_BYTES}: Lambda carries no more, base64-encoded`);
    }
    if (a.timeoutSeconds !== undefined && a.timeoutSeconds > API_TIMEOUT_SECONDS) {
      bad(`${at}.timeoutSeconds`, `must be at most ${API_TIMEOUT_SECONDS}: API Gateway gives up at 30 s`);
    }
    apis[name] = {
      name,
      url: u ? `${u.origin}${u.pathname.replace(/\/+$/, '')}` : a.url,
      provider: a.provider,
      maxBodyBytes: a.maxBodyBytes ?? DEFAULT_BODY_BYTES,
      timeoutMs: (a.timeoutSeconds ?? API_TIMEOUT_SECONDS) * 1000,
    };
  }

  const clients: Record<string, Client> = {};
  const allowedOrigins = new Set<string>();
  for (const [id, c] of Object.entries(raw.clients)) {
    const at = `clients.${id}`;
    c.providers.forEach((name, i) => {
      if (!(name in raw.providers)) bad(`${at}.providers.${i}`, `names no configured provider ("${name}")`);
    });
    if (c.type !== 'web' && c.apis.length > 0) bad(`${at}.apis`, 'only web clients call APIs through the broker (native apps hold their own tokens)');
    if (c.type !== 'web' && c.tokenDelivery === 'proxy') bad(`${at}.tokenDelivery`, '"proxy" is for web clients only');
    if (c.type === 'web') c.apis.forEach((name, i) => {
      const api = Object.hasOwn(raw.apis, name) ? raw.apis[name] : undefined;
      if (!api) bad(`${at}.apis.${i}`, `names no configured API ("${name}")`);
      // (An API naming no configured provider is reported once, at the API.)
      else if (Object.hasOwn(raw.providers, api.provider) && !c.providers.includes(api.provider)) {
        bad(`${at}.apis.${i}`, `the API "${name}" takes tokens of provider "${api.provider}", which this client does not log in with`);
      }
    });
    c.redirectUris.forEach((uri, i) => checkRedirectUri(`${at}.redirectUris.${i}`, uri, c.type, bad));
    if (c.postLogoutRedirectUri !== undefined) checkRedirectUri(`${at}.postLogoutRedirectUri`, c.postLogoutRedirectUri, c.type, bad);
    c.allowedOrigins.forEach((origin, i) => {
      const u = parseUrl(origin);
      if (!u || u.origin !== origin) bad(`${at}.allowedOrigins.${i}`, 'must be an origin: scheme://host[:port], no path or trailing slash');
      else if (!isSecureOrLoopback(u)) bad(`${at}.allowedOrigins.${i}`, 'must be https (http only on loopback)');
      else allowedOrigins.add(origin);
    });
    clients[id] = { ...c, id };
  }

  if (raw.tokenEncryptionKeys === undefined && options.runtime === 'lambda') {
    bad('tokenEncryptionKeys', 'is required in AWS Lambda');
  }
  secretRef('tokenEncryptionKeys', raw.tokenEncryptionKeys);
  if (raw.signingKeys === undefined && options.runtime === 'lambda') {
    bad('signingKeys', 'is required in AWS Lambda');
  }
  secretRef('signingKeys', raw.signingKeys);

  const ttl = raw.ttl;
  if (ttl.sessionIdleSeconds > ttl.sessionMaxSeconds) bad('ttl.sessionIdleSeconds', 'must not exceed ttl.sessionMaxSeconds');
  if (ttl.codeSeconds > 600) bad('ttl.codeSeconds', 'must be at most 600 (RFC 6749 §4.1.2 recommends 10 minutes at most)');
  if (ttl.loginSeconds > 3600) bad('ttl.loginSeconds', 'must be at most 3600');
  if (ttl.reuseGraceSeconds > 300) bad('ttl.reuseGraceSeconds', 'must be at most 300: a longer grace window hides refresh token theft');
  if (ttl.minAccessTokenSeconds > 3600) bad('ttl.minAccessTokenSeconds', 'must be at most 3600');

  if (Object.keys(raw.providers).length === 0) bad('providers', 'must configure at least one provider');
  if (Object.keys(raw.clients).length === 0) bad('clients', 'must configure at least one client');

  if (issues.length > 0) throw new ConfigError(issues);

  // Frozen all the way down, once, here: shared by every request.
  return deepFreeze({
    publicUrl: publicUrl!.origin,
    secureCookies,
    providers,
    clients,
    tokenEncryptionKeys: raw.tokenEncryptionKeys,
    signingKeys: raw.signingKeys,
    ttl: { ...ttl },
    storage: { ...raw.storage },
    apis,
    allowedOrigins,
  });
}

const isUnknownField = (issue: v.BaseIssue<unknown>) => issue.expected === 'never' && (issue.path?.length ?? 0) > 0;

/** A copy of a JSON document without the fields the issues name (unknown fields). */
function withoutFields(input: unknown, unknown: readonly v.BaseIssue<unknown>[]): unknown {
  const copy = structuredClone(input) as Record<string, unknown>;
  for (const issue of unknown) {
    const keys = issue.path!.map((item) => item.key);
    let parent: unknown = copy;
    for (const key of keys.slice(0, -1)) parent = (parent as Record<string, unknown>)[key as string];
    if (parent && typeof parent === 'object') delete (parent as Record<string, unknown>)[keys.at(-1) as string];
  }
  return copy;
}

/** valibot's messages for unknown and missing keys, in plain words. */
function readable(issue: v.BaseIssue<unknown>): string {
  if (issue.expected === 'never') return 'is not a known field';
  if (issue.received === 'undefined' && issue.message.startsWith('Invalid key')) return 'is required';
  return issue.message;
}

function checkRedirectUri(path: string, uri: string, type: 'web' | 'native', bad: (p: string, m: string) => void): void {
  const u = parseUrl(uri);
  if (!u) return bad(path, 'must be an absolute URI');
  if (u.hash) return bad(path, 'must not contain a fragment (RFC 6749 §3.1.2)');
  if (type === 'native') {
    if (!nativeRedirectKind(u)) {
      bad(path, 'a native client may register only a reverse-DNS private-use scheme, an https URI, or http on 127.0.0.1 / [::1] (RFC 8252 §7)');
    }
  } else if (!/^https?:$/.test(u.protocol) || !isSecureOrLoopback(u)) {
    bad(path, 'a web client must register https URIs (http only on loopback)');
  }
}

/** Parses a JSON text first, so a syntax error is reported like any other issue. */
export function parseConfigText(text: string, options: ParseOptions): Config {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    // Only the position: the parser's message quotes the text, which may hold a secret value.
    const at = /position (\d+)/.exec((err as Error).message)?.[1];
    throw new ConfigError([{ path: '', message: `is not valid JSON${at ? ` (at character ${at})` : ''}` }]);
  }
  return parseConfig(json, options);
}

/** Names the prepared form of `BROKER_CONFIG` (a path; lib/config/prepared.ts), which the stack ships beside it. */
export const PREPARED_CONFIG_ENV = 'BROKER_CONFIG_PREPARED';

/**
 * The configuration of this process, from the environment: `BROKER_CONFIG` (a path) or
 * `BROKER_CONFIG_JSON`; in AWS Lambda (`AWS_LAMBDA_FUNCTION_NAME`) it must take secrets from
 * Secrets Manager. The prepared form that `BROKER_CONFIG_PREPARED` names is taken when it was
 * parsed from this very text for this runtime; otherwise the text is parsed. Throws
 * `ConfigError` naming every bad field, which fails the cold start: the broker never runs on a
 * half-valid configuration.
 */
export function configFromEnv(env: NodeJS.ProcessEnv): Config {
  const runtime = env['AWS_LAMBDA_FUNCTION_NAME'] !== undefined ? 'lambda' : 'local';
  const text = env['BROKER_CONFIG_JSON'] ?? (env['BROKER_CONFIG'] ? readFileSync(env['BROKER_CONFIG']) : undefined);
  if (text === undefined) throw new Error('no configuration: set BROKER_CONFIG (a file path) or BROKER_CONFIG_JSON');
  const preparedPath = env[PREPARED_CONFIG_ENV];
  let prepared: string | undefined;
  try {
    if (preparedPath) prepared = readFileSync(preparedPath);
  } catch {
    // Not there: the text is parsed, as without one.
  }
  return (prepared !== undefined ? preparedConfig(prepared, text, runtime) : undefined) ?? parseConfigText(text, { runtime });
}

export type { RawConfig };
