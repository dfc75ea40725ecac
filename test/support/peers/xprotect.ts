/**
 * A local peer that behaves like a Milestone XProtect management server on the wire: its
 * identity provider (IdentityServer under `{server}/IDP`) and its ServerCommandService, where a
 * client trades the IDP's access token for a VMS token with the SOAP `Login` operation.
 *
 * The IDP (oidc-provider mounted under `/IDP`, IdentityServer's `/connect/...` paths):
 * - issuer `{server}/IDP`, discovery at `{server}/IDP/.well-known/openid-configuration`, which
 *   also names `external_providers_uri`: the external login providers an administrator set up
 *   (chosen on the authorization request with `acr_values=idp:<loginProviderId>`);
 * - the broker uses the public client `VmsAdminClient` (`token_endpoint_auth_method: none`):
 *   a request with a client secret or an Authorization header is `invalid_client`;
 * - PKCE S256 and a nonce are required on the authorization request;
 * - the code exchange must carry `scope` (as Milestone's own clients send it) and
 *   `code_verifier`; a missing `code_verifier` is refused by oidc-provider itself;
 * - scope `managementserver` exists; `offline_access` gives a refresh token even with
 *   `prompt=login` (oidc-provider alone would want `prompt=consent` for that);
 * - the `culture` authorization parameter is understood.
 *
 * The ServerCommandService (`{server}/managementServer/ServerCommandServiceOauth.svc`):
 * POST only, `SOAPAction` of `IServerCommandService/Login` (quoted or not), `Content-Type:
 * text/xml`, `Authorization: bearer <IDP access token>` checked for real at the IDP's userinfo
 * endpoint, a body with a GUID `instanceId` and an empty `currentToken`. Anything wrong is a
 * SOAP fault with HTTP 500. The answer's `TimeToLive` is configurable (`vms.ttlSeconds`), and
 * `vms.fail` makes every Login a fault (the VMS being down or refusing); `vms.script` decides the
 * next Logins one by one, each when it likes (for races).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { invalidClient, invalidRequest, startPeer, type Peer } from './oidc-peer.js';

export const XPROTECT_CLIENT_ID = 'VmsAdminClient';
export const SOAP_ACTION = 'http://videoos.net/2/XProtectCSServerCommand/IServerCommandService/Login';
export const SERVER_COMMAND_PATH = '/managementServer/ServerCommandServiceOauth.svc';
export const EXTERNAL_PROVIDERS_PATH = '/IDP/api/externalproviders';
export const EXTERNAL_PROVIDERS = [
  { loginProviderId: 'OIDC', displayName: 'Corporate login' },
  { loginProviderId: 'AAD', displayName: 'Azure AD' },
];
const SOAP_ENV = 'http://schemas.xmlsoap.org/soap/envelope/';
const NS = 'http://videoos.net/2/XProtectCSServerCommand';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface VmsLogin {
  readonly instanceId: string;
  readonly accessToken: string;
  readonly sub: string;
  readonly token: string;
  /** The SOAPAction header as sent. */
  readonly soapAction: string;
  readonly ttlSeconds: number;
}

export interface VmsState {
  /** TimeToLive of the VMS tokens handed out, in seconds. */
  ttlSeconds: number;
  /** When true, every Login answers a SOAP fault (HTTP 500). */
  fail: boolean;
  /**
   * The next Logins, in the order they arrive: each is awaited before the answer, and a fault is
   * answered when it resolves true. Empty: `fail` decides.
   */
  readonly script: (() => Promise<boolean>)[];
  /** Successful logins, in order. */
  readonly logins: VmsLogin[];
  /** Every Login request that was refused, with the reason. */
  readonly faults: string[];
}

export interface XProtectPeer extends Peer {
  readonly vms: VmsState;
  readonly serverCommandUrl: string;
}

export interface XProtectPeerOptions {
  readonly accessTokenSeconds?: number;
  readonly vmsTtlSeconds?: number;
}

function soapFault(res: ServerResponse, code: string, text: string): void {
  const xml = `<s:Envelope xmlns:s="${SOAP_ENV}"><s:Body><s:Fault><faultcode>${code}</faultcode>` +
    `<faultstring xml:lang="en-US">${text.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</faultstring></s:Fault></s:Body></s:Envelope>`;
  res.writeHead(500, { 'content-type': 'text/xml; charset=utf-8', 'content-length': Buffer.byteLength(xml) });
  res.end(xml);
}

export async function startXProtectPeer(options: XProtectPeerOptions = {}): Promise<XProtectPeer> {
  const vms: VmsState = { ttlSeconds: options.vmsTtlSeconds ?? 14_400, fail: false, script: [], logins: [], faults: [] };
  let issuer = '';

  async function serverCommand(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
    const fault = (code: string, text: string) => {
      vms.faults.push(text);
      soapFault(res, code, text);
    };
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' });
      res.end();
      return;
    }
    const action = String(req.headers['soapaction'] ?? '').replace(/^"(.*)"$/, '$1');
    if (action !== SOAP_ACTION) return fault('a:ActionNotSupported', `the SOAPAction "${action}" is not supported`);
    if (!/^text\/xml\b/i.test(String(req.headers['content-type'] ?? ''))) {
      return fault('s:Client', 'the content type must be text/xml (SOAP 1.1)');
    }
    const bearer = /^bearer\s+(\S+)$/i.exec(String(req.headers.authorization ?? ''))?.[1];
    if (!bearer) return fault('s:Client', 'an OAuth bearer access token is required');
    // The token is checked at the IDP, as the management server does.
    const userinfo = await fetch(`${issuer}/connect/userinfo`, { headers: { authorization: `Bearer ${bearer}` } });
    const claims = userinfo.ok ? ((await userinfo.json()) as { sub?: string }) : undefined;
    if (!claims?.sub) return fault('s:Client', `the access token was refused by the IDP (HTTP ${userinfo.status})`);
    if (!body.includes(SOAP_ENV) || !/<(?:\w+:)?Envelope[\s>]/.test(body)) return fault('s:Client', 'not a SOAP 1.1 envelope');
    const login = /<(?:(\w+):)?Login\b([^>]*)>([\s\S]*?)<\/(?:\w+:)?Login>/.exec(body);
    if (!login || !login[2]!.includes(`"${NS}"`)) return fault('s:Client', `no Login element in namespace ${NS}`);
    const instanceId = /<(?:\w+:)?instanceId>([^<]*)<\/(?:\w+:)?instanceId>/.exec(login[3]!)?.[1]?.trim() ?? '';
    if (!GUID.test(instanceId)) return fault('s:Client', 'instanceId must be a GUID');
    const current = /<(?:\w+:)?currentToken\s*\/>|<(?:\w+:)?currentToken>([^<]*)<\/(?:\w+:)?currentToken>/.exec(login[3]!);
    if (!current) return fault('s:Client', 'currentToken is missing');
    if ((current[1] ?? '').trim() !== '') return fault('s:Client', 'currentToken must be empty for a new login');
    const scripted = vms.script.shift();
    if (scripted ? await scripted() : vms.fail) return fault('s:Server', 'the management server is not available');

    const token = `TOKEN#${randomUUID()}#vms-peer//ServerConnector#`;
    const ttlSeconds = vms.ttlSeconds;
    vms.logins.push({ instanceId, accessToken: bearer, sub: claims.sub, token, soapAction: String(req.headers['soapaction']), ttlSeconds });
    const xml = `<s:Envelope xmlns:s="${SOAP_ENV}"><s:Body><LoginResponse xmlns="${NS}">` +
      `<LoginResult xmlns:i="http://www.w3.org/2001/XMLSchema-instance">` +
      `<RegistrationTime>${new Date().toISOString()}</RegistrationTime>` +
      `<TimeToLive><MicroSeconds>${ttlSeconds * 1_000_000}</MicroSeconds></TimeToLive>` +
      `<TimeToLiveLimited>false</TimeToLiveLimited>` +
      `<Token>${token}</Token>` +
      `</LoginResult></LoginResponse></s:Body></s:Envelope>`;
    res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8', 'content-length': Buffer.byteLength(xml) });
    res.end(xml);
  }

  const peer = await startPeer({
    host: '127.0.0.5',
    mountPath: '/IDP',
    routes: {
      authorization: '/connect/authorize',
      token: '/connect/token',
      userinfo: '/connect/userinfo',
      jwks: '/.well-known/openid-configuration/jwks',
      revocation: '/connect/revocation',
      end_session: '/connect/endsession',
    },
    client: {
      client_id: XPROTECT_CLIENT_ID,
      token_endpoint_auth_method: 'none',
      scope: 'openid profile managementserver offline_access',
    },
    offlineAccessWithoutConsent: true,
    configuration: ({ origin }) => ({
      scopes: ['openid', 'profile', 'managementserver', 'offline_access'],
      extraParams: ['culture'],
      rotateRefreshToken: true,
      discovery: { external_providers_uri: `${origin}${EXTERNAL_PROVIDERS_PATH}` },
      ttl: { AccessToken: options.accessTokenSeconds ?? 3600 },
    }),
    checkAuthorization(query) {
      if (!query.get('nonce')) return invalidRequest('nonce is required');
      if (query.get('code_challenge_method') !== 'S256' || !query.get('code_challenge')) return invalidRequest('PKCE with S256 is required');
      return undefined;
    },
    checkClientRequest(req) {
      if (req.headers.authorization !== undefined || req.form.has('client_secret')) return invalidClient(`${XPROTECT_CLIENT_ID} is a public client: no client secret`);
      if (req.form.get('client_id') !== XPROTECT_CLIENT_ID) return invalidClient('client_id is required');
      if (req.form.get('grant_type') === 'authorization_code') {
        // (A missing code_verifier is refused by oidc-provider itself: invalid_grant.)
        if (!req.form.get('scope')) return invalidRequest('scope is required on the code exchange');
      }
      return undefined;
    },
    async extraRoutes(req, res, url, body) {
      if (url.pathname === EXTERNAL_PROVIDERS_PATH && req.method === 'GET') {
        const text = JSON.stringify(EXTERNAL_PROVIDERS);
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return true;
      }
      if (url.pathname === SERVER_COMMAND_PATH) {
        await serverCommand(req, res, body);
        return true;
      }
      return false;
    },
  });
  issuer = peer.issuer;
  return Object.assign(peer, { vms, serverCommandUrl: `${peer.origin}${SERVER_COMMAND_PATH}` }) as XProtectPeer;
}
