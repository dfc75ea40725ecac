import { describe, expect, it } from 'vitest';
import { thrownBy } from '../../support/errors.js';
import { ConfigError, parseConfig, parseConfigText, type ConfigIssue, type ParseOptions } from '../../../lib/config/parse.js';
import { configDocWithProvider, minimalConfigDoc, type ConfigDoc } from '../fixtures.js';

const LOCAL: ParseOptions = { runtime: 'local' };
const LAMBDA: ParseOptions = { runtime: 'lambda' };

/** Runs `fn`, which must throw a ConfigError, and returns its issues. */
function issuesOf(fn: () => unknown): readonly ConfigIssue[] {
  const issues = thrownBy(fn, ConfigError).issues;
  expect(issues.length).toBeGreaterThan(0);
  return issues;
}

const pathsOf = (issues: readonly ConfigIssue[]) => issues.map((i) => i.path);

function rejectPaths(doc: unknown, options: ParseOptions = LOCAL): string[] {
  return pathsOf(issuesOf(() => parseConfig(doc, options)));
}

describe('parseConfigText', () => {
  it('reports text that is not JSON as one document-level issue', () => {
    const issues = issuesOf(() => parseConfigText('{"publicUrl": ', LOCAL));
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe('');
    expect(issues[0]!.message).toMatch(/not valid JSON/);
  });

  it('reports an empty text as not JSON', () => {
    const issues = issuesOf(() => parseConfigText('', LOCAL));
    expect(pathsOf(issues)).toEqual(['']);
  });

  it('runs the same checks as parseConfig after JSON parsing', () => {
    const doc = minimalConfigDoc();
    doc.publicUrl = 'http://auth.example.com';
    expect(pathsOf(issuesOf(() => parseConfigText(JSON.stringify(doc), LOCAL)))).toEqual(['publicUrl']);
  });

  it('parses a valid text', () => {
    const config = parseConfigText(JSON.stringify(minimalConfigDoc()), LOCAL);
    expect(config.publicUrl).toBe('https://auth.example.com');
  });
});

describe('parseConfig: shape', () => {
  it('refuses a non-object document', () => {
    expect(rejectPaths('a string')).toEqual(['']);
    expect(rejectPaths(null)).toEqual(['']);
  });

  it('refuses an unknown top-level key by its path', () => {
    const doc: ConfigDoc = { ...minimalConfigDoc(), bogus: true };
    expect(rejectPaths(doc)).toEqual(['bogus']);
  });

  it('refuses an unknown provider key and a bad picklist value with their paths', () => {
    const doc = configDocWithProvider({ clientAuth: 'private_key_jwt', colour: 'blue' });
    expect(rejectPaths(doc).sort()).toEqual(['providers.p.clientAuth', 'providers.p.colour']);
  });

  it('refuses a missing required field', () => {
    const doc = minimalConfigDoc();
    delete doc.clients['web']!['redirectUris'];
    expect(rejectPaths(doc)).toEqual(['clients.web.redirectUris']);
  });

  it('refuses a non-integer ttl', () => {
    const doc = minimalConfigDoc();
    doc.ttl = { codeSeconds: 1.5 };
    expect(rejectPaths(doc)).toEqual(['ttl.codeSeconds']);
  });

  it('(v2) accepts "scopes": [] for a provider that knows no scope: no openid, so static endpoints need no jwksUri', () => {
    const doc = configDocWithProvider({ issuer: undefined, authorizationEndpoint: 'https://idp.example.com/authorize', tokenEndpoint: 'https://idp.example.com/token', scopes: [] });
    const p = parseConfig(doc, LOCAL).providers['p']!;
    expect(p.scopes).toEqual([]);
    expect(p.openid).toBe(false);
  });

  it('(v2) refuses an empty scope name and an unknown idTokenSigningAlg', () => {
    const doc = configDocWithProvider({ scopes: ['openid', ''] });
    doc.clients['app']!['idTokenSigningAlg'] = 'HS256';
    expect(rejectPaths(doc).sort()).toEqual(['clients.app.idTokenSigningAlg', 'providers.p.scopes.1']);
  });

  it('(v2) backchannelLogout: a boolean, off by default, and only with the openid scope (sessions are found by the ID token\'s sub and sid)', () => {
    expect(parseConfig(minimalConfigDoc(), LOCAL).providers['p']!.backchannelLogout).toBe(false);
    expect(parseConfig(configDocWithProvider({ backchannelLogout: true }), LOCAL).providers['p']!.backchannelLogout).toBe(true);
    expect(rejectPaths(configDocWithProvider({ backchannelLogout: 'yes' }))).toEqual(['providers.p.backchannelLogout']);
    expect(rejectPaths(configDocWithProvider({ backchannelLogout: true, scopes: ['profile'] }))).toEqual(['providers.p.backchannelLogout']);
  });

  it('refuses a secret reference of an unknown form', () => {
    const doc = configDocWithProvider({ clientSecret: { file: '/etc/secret' } });
    expect(rejectPaths(doc)).toContain('providers.p.clientSecret');
  });

  it('refuses provider names and client ids outside their alphabets', () => {
    const doc = minimalConfigDoc();
    doc.providers['bad name'] = doc.providers['p']!;
    doc.clients['bad id!'] = doc.clients['web']!;
    const paths = rejectPaths(doc);
    expect(paths).toContain('providers.bad name');
    expect(paths).toContain('clients.bad id!');
  });
});

describe('parseConfig: rules between fields', () => {
  it('reports every bad field at once, each with its path', () => {
    const doc = minimalConfigDoc();
    doc.providers['p']!['issuer'] = 'http://idp.example.com';
    doc.clients['app']!['redirectUris'] = ['myapp:/cb'];
    doc.clients['web']!['allowedOrigins'] = ['https://app.example.com/path'];
    const issues = issuesOf(() => parseConfig(doc, LOCAL));
    expect(pathsOf(issues).sort()).toEqual([
      'clients.app.redirectUris.0',
      'clients.web.allowedOrigins.0',
      'providers.p.issuer',
    ]);
    expect(issues.find((i) => i.path === 'providers.p.issuer')!.message).toMatch(/https/);
  });

  it('names every issue in the error message', () => {
    const doc = minimalConfigDoc();
    doc.providers['p']!['issuer'] = 'http://idp.example.com';
    doc.clients['web']!['allowedOrigins'] = ['https://app.example.com/'];
    const { message } = thrownBy(() => parseConfig(doc, LOCAL), ConfigError);
    expect(message).toContain('providers.p.issuer');
    expect(message).toContain('clients.web.allowedOrigins.0');
  });

  describe('publicUrl', () => {
    it.each([
      ['https://auth.example.com/broker', 'a path'],
      ['https://auth.example.com/?x=1', 'a query'],
      ['https://user:pw@auth.example.com', 'credentials'],
      ['http://auth.example.com', 'http off loopback'],
      ['ftp://auth.example.com', 'a non-http scheme'],
      ['auth.example.com', 'no scheme'],
    ])('refuses %s (%s)', (publicUrl) => {
      const doc = minimalConfigDoc();
      doc.publicUrl = publicUrl;
      const paths = rejectPaths(doc);
      expect(paths.length).toBeGreaterThan(0);
      expect(new Set(paths)).toEqual(new Set(['publicUrl']));
    });

    it('accepts http on loopback, without Secure cookies', () => {
      const doc = minimalConfigDoc();
      doc.publicUrl = 'http://127.0.0.1:8080';
      const config = parseConfig(doc, LOCAL);
      expect(config.publicUrl).toBe('http://127.0.0.1:8080');
      expect(config.secureCookies).toBe(false);
    });

    it('drops a trailing slash', () => {
      const doc = minimalConfigDoc();
      doc.publicUrl = 'https://auth.example.com/';
      expect(parseConfig(doc, LOCAL).publicUrl).toBe('https://auth.example.com');
    });
  });

  describe('native redirect URIs', () => {
    const native = (uri: string) => {
      const doc = minimalConfigDoc();
      doc.clients['app']!['redirectUris'] = [uri];
      return doc;
    };

    it.each([
      'myapp:/cb',
      'http://localhost/cb',
      'http://example.com/cb',
      'http://127.0.0.2/cb',
      'com.example.app:/cb#frag',
      'not a uri',
    ])('refuses %s', (uri) => {
      expect(rejectPaths(native(uri))).toEqual(['clients.app.redirectUris.0']);
    });

    it.each([
      'com.example.app:/cb',
      'https://app.example.com/cb',
      'http://127.0.0.1/cb',
      'http://[::1]/cb',
    ])('accepts %s', (uri) => {
      expect(parseConfig(native(uri), LOCAL).clients['app']!.redirectUris).toEqual([uri]);
    });

    it('checks postLogoutRedirectUri by the same rules', () => {
      const doc = minimalConfigDoc();
      doc.clients['app']!['postLogoutRedirectUri'] = 'myapp:/bye';
      expect(rejectPaths(doc)).toEqual(['clients.app.postLogoutRedirectUri']);
    });
  });

  describe('web redirect URIs and origins', () => {
    it.each([
      'http://app.example.com/cb',
      'com.example.app:/cb',
      'https://app.example.com/cb#x',
    ])('refuses the redirect URI %s', (uri) => {
      const doc = minimalConfigDoc();
      doc.clients['web']!['redirectUris'] = ['https://app.example.com/ok', uri];
      expect(rejectPaths(doc)).toEqual(['clients.web.redirectUris.1']);
    });

    it.each([
      'https://app.example.com/',
      'https://app.example.com/path',
      'http://app.example.com',
      'app.example.com',
    ])('refuses the origin %s', (origin) => {
      const doc = minimalConfigDoc();
      doc.clients['web']!['allowedOrigins'] = [origin];
      expect(rejectPaths(doc)).toEqual(['clients.web.allowedOrigins.0']);
    });

    it('collects allowed origins of every client', () => {
      const doc = minimalConfigDoc();
      doc.clients['web']!['allowedOrigins'] = ['https://app.example.com', 'http://127.0.0.1:3000'];
      const config = parseConfig(doc, LOCAL);
      expect([...config.allowedOrigins].sort()).toEqual(['http://127.0.0.1:3000', 'https://app.example.com']);
    });
  });

  it('refuses a client naming a provider that is not configured', () => {
    const doc = minimalConfigDoc();
    doc.clients['web']!['providers'] = ['p', 'missing'];
    const issues = issuesOf(() => parseConfig(doc, LOCAL));
    expect(pathsOf(issues)).toEqual(['clients.web.providers.1']);
    expect(issues[0]!.message).toContain('missing');
  });

  describe('client authentication', () => {
    it('refuses clientAuth none with a secret', () => {
      expect(rejectPaths(configDocWithProvider({ clientAuth: 'none' }))).toEqual(['providers.p.clientSecret']);
    });

    it('refuses client_secret_basic (the default) without a secret', () => {
      const doc = minimalConfigDoc();
      delete doc.providers['p']!['clientSecret'];
      expect(rejectPaths(doc)).toEqual(['providers.p.clientSecret']);
    });

    it('refuses client_secret_post without a secret', () => {
      const doc = configDocWithProvider({ clientAuth: 'client_secret_post' });
      delete doc.providers['p']!['clientSecret'];
      expect(rejectPaths(doc)).toEqual(['providers.p.clientSecret']);
    });

    it('refuses a public client without PKCE', () => {
      const doc = configDocWithProvider({ clientAuth: 'none', pkce: false });
      delete doc.providers['p']!['clientSecret'];
      expect(rejectPaths(doc)).toEqual(['providers.p.pkce']);
    });

    it('accepts clientAuth none without a secret', () => {
      const doc = configDocWithProvider({ clientAuth: 'none' });
      delete doc.providers['p']!['clientSecret'];
      expect(parseConfig(doc, LOCAL).providers['p']!.clientAuth).toBe('none');
    });
  });

  describe('authorization parameters', () => {
    it.each(['state', 'redirect_uri', 'nonce', 'code_challenge', 'scope'])('refuses the reserved parameter %s', (name) => {
      const doc = configDocWithProvider({ authorizationParams: { prompt: 'login', [name]: 'x' } });
      expect(rejectPaths(doc)).toEqual([`providers.p.authorizationParams.${name}`]);
    });

    it.each(['fragment', 'query.jwt', ''])('refuses response_mode %j', (mode) => {
      const doc = configDocWithProvider({ authorizationParams: { response_mode: mode } });
      expect(rejectPaths(doc)).toEqual(['providers.p.authorizationParams.response_mode']);
    });

    it('accepts response_mode form_post and records it', () => {
      const config = parseConfig(configDocWithProvider({ authorizationParams: { response_mode: 'form_post' } }), LOCAL);
      expect(config.providers['p']!.responseMode).toBe('form_post');
    });

    it('refuses forwarding state, provider and response_mode, by index', () => {
      const doc = configDocWithProvider({ forwardParams: ['login_hint', 'state', 'provider', 'response_mode'] });
      expect(rejectPaths(doc)).toEqual(['providers.p.forwardParams.1', 'providers.p.forwardParams.2', 'providers.p.forwardParams.3']);
    });

    it('accepts forwarding ordinary parameters', () => {
      const config = parseConfig(configDocWithProvider({ forwardParams: ['login_hint', 'ui_locales'] }), LOCAL);
      expect(config.providers['p']!.forwardParams).toEqual(['login_hint', 'ui_locales']);
    });
  });

  describe('runtime lambda', () => {
    const sm = (name: string) => ({ secretsManager: name });

    it('refuses a missing tokenEncryptionKeys and (v2) signingKeys', () => {
      const doc = configDocWithProvider({ clientSecret: sm('idp') });
      expect(rejectPaths(doc, LAMBDA)).toEqual(['tokenEncryptionKeys', 'signingKeys']);
    });

    it('refuses {value} and {env} secret references', () => {
      const doc = configDocWithProvider({ clientSecret: { value: 'inline' } });
      doc.tokenEncryptionKeys = { env: 'KEYS' };
      doc['signingKeys'] = { value: '{}' };
      expect(rejectPaths(doc, LAMBDA).sort()).toEqual(['providers.p.clientSecret', 'signingKeys', 'tokenEncryptionKeys']);
    });

    it('accepts the same {value} and {env} references locally', () => {
      const doc = configDocWithProvider({ clientSecret: { value: 'inline' } });
      doc.tokenEncryptionKeys = { env: 'KEYS' };
      expect(parseConfig(doc, LOCAL).tokenEncryptionKeys).toEqual({ env: 'KEYS' });
    });

    it('accepts Secrets Manager references', () => {
      const doc = configDocWithProvider({ clientSecret: { secretsManager: 'idp', jsonKey: 'secret' } });
      doc.tokenEncryptionKeys = sm('keys');
      doc['signingKeys'] = sm('signing-keys');
      const config = parseConfig(doc, LAMBDA);
      expect(config.providers['p']!.clientSecret).toEqual({ secretsManager: 'idp', jsonKey: 'secret' });
      expect(config.tokenEncryptionKeys).toEqual({ secretsManager: 'keys' });
      expect(config.signingKeys).toEqual({ secretsManager: 'signing-keys' });
    });
  });

  describe('provider endpoints', () => {
    const staticEndpoints = {
      issuer: undefined,
      authorizationEndpoint: 'https://idp.example.com/authorize',
      tokenEndpoint: 'https://idp.example.com/token',
    };

    it('needs issuer and jwksUri with the openid scope and static endpoints', () => {
      expect(rejectPaths(configDocWithProvider(staticEndpoints)).sort()).toEqual(['providers.p.issuer', 'providers.p.jwksUri']);
    });

    it('needs both static endpoints', () => {
      const doc = configDocWithProvider({ tokenEndpoint: 'https://idp.example.com/token', scopes: ['read'] });
      expect(rejectPaths(doc)).toEqual(['providers.p.authorizationEndpoint']);
    });

    it('needs an issuer without static endpoints', () => {
      const doc = configDocWithProvider({ issuer: undefined, scopes: ['profile'] });
      expect(rejectPaths(doc)).toEqual(['providers.p.issuer']);
    });

    it('refuses an http endpoint off loopback', () => {
      const doc = configDocWithProvider({ ...staticEndpoints, issuer: 'https://idp.example.com', jwksUri: 'http://idp.example.com/jwks' });
      expect(rejectPaths(doc)).toEqual(['providers.p.jwksUri']);
    });

    it('refuses a downstream login URL that is http off loopback', () => {
      const doc = configDocWithProvider({ downstreamLogin: { kind: 'xprotect', url: 'http://vms.example.com/ManagementServer/ServerCommandService.svc' } });
      expect(rejectPaths(doc)).toEqual(['providers.p.downstreamLogin.url']);
    });

    it('accepts static endpoints without openid, and marks the provider as not discovered', () => {
      const config = parseConfig(configDocWithProvider({ ...staticEndpoints, scopes: ['read'] }), LOCAL);
      const p = config.providers['p']!;
      expect(p.discovery).toBe(false);
      expect(p.openid).toBe(false);
    });

    it('accepts static endpoints with openid given issuer and jwksUri', () => {
      const doc = configDocWithProvider({ ...staticEndpoints, issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks' });
      const p = parseConfig(doc, LOCAL).providers['p']!;
      expect(p.discovery).toBe(false);
      expect(p.openid).toBe(true);
    });

    it('accepts http endpoints on loopback', () => {
      const doc = configDocWithProvider({ issuer: 'http://127.0.0.1:9000/realms/x' });
      expect(parseConfig(doc, LOCAL).providers['p']!.issuer).toBe('http://127.0.0.1:9000/realms/x');
    });
  });

  describe('ttl', () => {
    it('refuses sessionIdleSeconds above sessionMaxSeconds', () => {
      const doc = minimalConfigDoc();
      doc.ttl = { sessionIdleSeconds: 3600, sessionMaxSeconds: 1800 };
      expect(rejectPaths(doc)).toEqual(['ttl.sessionIdleSeconds']);
    });

    it('refuses an idle ttl above the default max', () => {
      const doc = minimalConfigDoc();
      doc.ttl = { sessionIdleSeconds: 7_776_001 };
      expect(rejectPaths(doc)).toEqual(['ttl.sessionIdleSeconds']);
    });

    it('refuses codeSeconds above 600', () => {
      const doc = minimalConfigDoc();
      doc.ttl = { codeSeconds: 601 };
      expect(rejectPaths(doc)).toEqual(['ttl.codeSeconds']);
    });

    it('accepts idle equal to max', () => {
      const doc = minimalConfigDoc();
      doc.ttl = { sessionIdleSeconds: 3600, sessionMaxSeconds: 3600 };
      expect(parseConfig(doc, LOCAL).ttl.sessionIdleSeconds).toBe(3600);
    });
  });

  describe('storage', () => {
    it('writes JWE ciphertexts unless told otherwise: a release before the compact form reads only those', () => {
      expect(parseConfig(minimalConfigDoc(), LOCAL).storage).toEqual({ ciphertexts: 'jwe' });
    });

    it('takes compact ciphertexts, and refuses another form or an unknown field by its path', () => {
      const doc = minimalConfigDoc();
      doc.storage = { ciphertexts: 'compact' };
      expect(parseConfig(doc, LOCAL).storage.ciphertexts).toBe('compact');
      doc.storage = { ciphertexts: 'jwt', format: 2 };
      expect(rejectPaths(doc).sort()).toEqual(['storage.ciphertexts', 'storage.format']);
    });
  });

  it('refuses a document without providers or clients', () => {
    expect(rejectPaths({ publicUrl: 'https://auth.example.com', providers: {}, clients: {} }).sort()).toEqual(['clients', 'providers']);
  });
});

describe('parseConfig: a valid minimal document', () => {
  it('fills the defaults', () => {
    const config = parseConfig(minimalConfigDoc(), LOCAL);
    expect(config.publicUrl).toBe('https://auth.example.com');
    expect(config.secureCookies).toBe(true);
    expect(config.ttl).toEqual({
      loginSeconds: 600,
      codeSeconds: 60,
      sessionIdleSeconds: 1_209_600,
      sessionMaxSeconds: 7_776_000,
      reuseGraceSeconds: 30,
      minAccessTokenSeconds: 60,
    });
    expect(config.tokenEncryptionKeys).toBeUndefined();
    expect(config.signingKeys).toBeUndefined();

    const p = config.providers['p']!;
    expect(p.name).toBe('p');
    expect(p.clientAuth).toBe('client_secret_basic');
    expect(p.tokenRequestFormat).toBe('form');
    expect(p.pkce).toBe(true);
    expect(p.scopes).toEqual(['openid']);
    expect(p.authorizationParams).toEqual({});
    expect(p.forwardParams).toEqual([]);
    expect(p.tokenParams).toEqual({});
    expect(p.refreshParams).toEqual({});
    expect(p.discovery).toBe(true);
    expect(p.openid).toBe(true);
    expect(p.responseMode).toBe('query');

    expect(config.clients['web']).toMatchObject({ id: 'web', type: 'web', providers: ['p'] });
    expect(config.clients['app']).toMatchObject({ id: 'app', type: 'native', allowedOrigins: [], idTokenSigningAlg: 'RS256' });
    expect([...config.allowedOrigins]).toEqual(['https://app.example.com']);
  });

  it('returns a frozen result', () => {
    const config = parseConfig(minimalConfigDoc(), LOCAL);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.providers)).toBe(true);
    expect(Object.isFrozen(config.providers['p'])).toBe(true);
    expect(Object.isFrozen(config.clients)).toBe(true);
    expect(Object.isFrozen(config.clients['web'])).toBe(true);
    expect(Object.isFrozen(config.ttl)).toBe(true);
    expect(() => {
      (config as { publicUrl: string }).publicUrl = 'https://evil.example.com';
    }).toThrow(TypeError);
  });

  it('does not alias the input document', () => {
    const doc = minimalConfigDoc();
    const config = parseConfig(doc, LOCAL);
    doc.publicUrl = 'https://changed.example.com';
    doc.providers['p']!['clientId'] = 'changed';
    expect(config.publicUrl).toBe('https://auth.example.com');
    expect(config.providers['p']!.clientId).toBe('broker');
  });
});

describe('parseConfig: limits from review', () => {
  const doc = () => ({
    publicUrl: 'https://auth.example.com',
    providers: { p: { issuer: 'https://op.example.com', clientId: 'c', clientSecret: { value: 's' } } },
    clients: { app: { type: 'native', redirectUris: ['com.example.app:/cb'], providers: ['p'] } },
  });
  const paths = (d: unknown) => {
    try {
      parseConfig(d, { runtime: 'local' });
      return [];
    } catch (err) {
      return (err as ConfigError).issues.map((i) => i.path);
    }
  };
  it('refuses client credentials in tokenParams or refreshParams', () => {
    const d: any = doc();
    d.providers.p.tokenParams = { client_secret: 'inline' };
    d.providers.p.refreshParams = { client_assertion: 'x' };
    expect(paths(d)).toEqual(['providers.p.tokenParams.client_secret', 'providers.p.refreshParams.client_assertion']);
  });
  it('refuses forwarding request, request_uri and max_age', () => {
    const d: any = doc();
    d.providers.p.forwardParams = ['login_hint', 'request', 'request_uri', 'max_age'];
    expect(paths(d)).toEqual(['providers.p.forwardParams.1', 'providers.p.forwardParams.2', 'providers.p.forwardParams.3']);
  });
  it('bounds the grace window, the login lifetime and the minimum token lifetime', () => {
    const d: any = doc();
    d.ttl = { reuseGraceSeconds: 301, loginSeconds: 3601, minAccessTokenSeconds: 3601 };
    expect(paths(d).sort()).toEqual(['ttl.loginSeconds', 'ttl.minAccessTokenSeconds', 'ttl.reuseGraceSeconds']);
  });
  it('does not quote the text of a document that is not JSON', () => {
    try {
      parseConfigText('{"clientSecret": {"value": "hunter2"', { runtime: 'local' });
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2');
      return;
    }
    throw new Error('expected a ConfigError');
  });
});

describe('(v2) the API proxy: apis, a web client\'s apis and tokenDelivery', () => {
  const withApis = (apis: Record<string, unknown>, client: Record<string, unknown> = {}): ConfigDoc => {
    const doc = minimalConfigDoc();
    doc['apis'] = apis;
    Object.assign(doc.clients['web']!, client);
    return doc;
  };

  it('names every bad reference and value by its path, all at once', () => {
    const doc = withApis({
      videos: { url: 'http://api.example.com/v1', provider: 'nope' },
      query: { url: 'https://api.example.com/v1?x=1', provider: 'p' },
      frag: { url: 'https://api.example.com/v1#x', provider: 'p' },
      creds: { url: 'https://u:pw@api.example.com/v1', provider: 'p' },
      rel: { url: '/v1', provider: 'p' },
      ftp: { url: 'ftp://api.example.com/v1', provider: 'p' },
      big: { url: 'https://api.example.com', provider: 'p', maxBodyBytes: 6 * 1024 * 1024 },
      slow: { url: 'https://api.example.com', provider: 'p', timeoutSeconds: 26 },
    }, { apis: ['videos', 'missing'] });
    doc.clients['app']!['apis'] = ['videos'];
    doc.clients['app']!['tokenDelivery'] = 'proxy';
    expect(rejectPaths(doc).sort()).toEqual([
      'apis.big.maxBodyBytes', 'apis.creds.url', 'apis.frag.url', 'apis.ftp.url', 'apis.query.url', 'apis.rel.url', 'apis.slow.timeoutSeconds',
      'apis.videos.provider', 'apis.videos.url', 'clients.app.apis', 'clients.app.tokenDelivery', 'clients.web.apis.1',
    ]);
  });

  it('refuses a client API of a provider the client does not log in with', () => {
    const doc = withApis({ videos: { url: 'https://api.example.com/v1', provider: 'q' } }, { apis: ['videos'] });
    doc.providers['q'] = { ...doc.providers['p'] };
    const issues = issuesOf(() => parseConfig(doc, LOCAL));
    expect(pathsOf(issues)).toEqual(['clients.web.apis.0']);
    expect(issues[0]!.message).toContain('provider "q"');
  });

  it('refuses an API name that is not a path segment, and unknown fields of an API', () => {
    expect(rejectPaths(withApis({ 'a/b': { url: 'https://api.example.com', provider: 'p' } }))).toEqual(['apis.a/b']);
    expect(rejectPaths(withApis({ a: { url: 'https://api.example.com', provider: 'p', headers: {} } }))).toEqual(['apis.a.headers']);
    expect(rejectPaths(withApis({}, { tokenDelivery: 'cookies' }))).toEqual(['clients.web.tokenDelivery']);
  });

  it('accepts https and loopback http, drops a trailing slash, and fills in the defaults', () => {
    const config = parseConfig(withApis({
      videos: { url: 'https://api.example.com/v1/', provider: 'p' },
      local: { url: 'http://127.0.0.1:8080', provider: 'p', maxBodyBytes: 1024, timeoutSeconds: 5 },
    }, { apis: ['videos', 'local'], tokenDelivery: 'proxy' }), LOCAL);
    expect(config.apis['videos']).toEqual({ name: 'videos', url: 'https://api.example.com/v1', provider: 'p', maxBodyBytes: 4 * 1024 * 1024, timeoutMs: 25_000 });
    expect(config.apis['local']).toEqual({ name: 'local', url: 'http://127.0.0.1:8080', provider: 'p', maxBodyBytes: 1024, timeoutMs: 5000 });
    expect(config.clients['web']).toMatchObject({ apis: ['videos', 'local'], tokenDelivery: 'proxy' });
    expect(config.clients['app']).toMatchObject({ apis: [], tokenDelivery: 'tokens' });
    expect(Object.isFrozen(config.apis['videos'])).toBe(true);
  });

  it('has no APIs unless configured', () => {
    expect(parseConfig(minimalConfigDoc(), LOCAL).apis).toEqual({});
  });
});

describe('(issue 13) unknown fields hide nothing', () => {
  it('reports unknown fields at any depth together with every rule the rest of the document breaks', () => {
    const doc = minimalConfigDoc() as Record<string, any>;
    doc['tokenEncryptionKey'] = { secretsManager: 'typo' };
    doc['publicUrl'] = 'http://auth.example.com';
    const [name] = Object.keys(doc['providers']);
    doc['providers'][name!]['clientSecrett'] = 'x';
    const paths = rejectPaths(doc, LAMBDA);
    expect(paths).toEqual(expect.arrayContaining(['tokenEncryptionKey', `providers.${name}.clientSecrett`, 'publicUrl', 'tokenEncryptionKeys', 'signingKeys']));
    expect(paths.slice(0, 2).sort()).toEqual([`providers.${name}.clientSecrett`, 'tokenEncryptionKey'].sort());
  });

  it('still reports every shape error (wrong types) at once, unknown fields among them', () => {
    const doc = minimalConfigDoc() as Record<string, any>;
    doc['extra'] = 1;
    doc['ttl'] = { loginSeconds: 'long' };
    expect(rejectPaths(doc).sort()).toEqual(['extra', 'ttl.loginSeconds']);
  });
});
