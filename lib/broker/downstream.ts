/**
 * A second token obtained with the upstream access token after each login and upstream refresh
 * (`downstreamLogin`), renewed before it expires. Kind `xprotect`: Milestone XProtect's
 * ServerCommandService SOAP `Login`, whose `Token` apps receive as `vms_token`.
 */
import { randomUUID } from 'node:crypto';
import type { Provider } from '../config/parse.js';
import { UpstreamMalformedError } from '../errors.js';
import type { TokenCipher } from '../crypto/token-cipher.js';
import { upstreamRequest, type HttpOptions } from '../oauth/http.js';
import type { Runtime } from '../runtime.js';
import { fieldContext } from './session-tokens.js';

export interface DownstreamGrant {
  /** Values handed to apps beside the access token, e.g. `vms_token`. */
  readonly values: Readonly<Record<string, string>>;
  /** When the downstream token expires (epoch seconds). */
  readonly expiresAt: number;
  /** The stable id this session logs in with (XProtect `instanceId`). */
  readonly instanceId: string;
}

const SOAP_ACTION = 'http://videoos.net/2/XProtectCSServerCommand/IServerCommandService/Login';
const NS = 'http://videoos.net/2/XProtectCSServerCommand';

/** Renew when less than this share of the token's lifetime is left (and at least 60 s before). */
export function renewalDue(grantExpiresAt: number | undefined, lifetime: number | undefined, now: number): boolean {
  if (grantExpiresAt === undefined) return true;
  const margin = Math.max(60, Math.floor((lifetime ?? 0) / 5));
  return grantExpiresAt - now <= margin;
}

/** Runs the provider's downstream login, if it has one. */
export async function runDownstreamLogin(rt: Runtime, provider: Provider, accessToken: string, instanceId: string | undefined, http: HttpOptions = rt.http): Promise<DownstreamGrant | undefined> {
  const downstream = provider.downstreamLogin;
  if (!downstream) return undefined;
  const id = instanceId ?? randomUUID();
  const body =
    '<?xml version="1.0" encoding="utf-8"?>' +
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>' +
    `<Login xmlns="${NS}"><instanceId>${id}</instanceId><currentToken></currentToken></Login>` +
    '</s:Body></s:Envelope>';
  const res = await upstreamRequest(downstream.url, {
    method: 'POST',
    headers: { 'content-type': 'text/xml; charset=utf-8', soapaction: SOAP_ACTION, authorization: `bearer ${accessToken}` },
    body,
  }, http);
  const { token, microSeconds } = parseLoginResult(res.status, res.text);
  const now = rt.now();
  return { values: { vms_token: token }, expiresAt: now + Math.floor(microSeconds / 1_000_000), instanceId: id };
}

const element = (xml: string, name: string) => new RegExp(`<(?:[A-Za-z0-9_-]+:)?${name}(?:\\s[^>]*)?>([^<]*)</(?:[A-Za-z0-9_-]+:)?${name}>`).exec(xml)?.[1];

function xmlText(value: string): string {
  return value.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

/** Reads `Token` and `TimeToLive/MicroSeconds` of a `LoginResult`; a fault or anything else is a 502. */
export function parseLoginResult(status: number, xml: string): { token: string; microSeconds: number } {
  if (/<(?:[A-Za-z0-9_-]+:)?Fault[\s>]/.test(xml)) {
    throw new UpstreamMalformedError(`the XProtect login answered a SOAP fault (HTTP ${status})`);
  }
  if (status !== 200) throw new UpstreamMalformedError(`the XProtect login answered HTTP ${status}`);
  const result = /<(?:[A-Za-z0-9_-]+:)?LoginResult[\s>][\s\S]*<\/(?:[A-Za-z0-9_-]+:)?LoginResult>/.exec(xml)?.[0];
  if (!result) throw new UpstreamMalformedError('the XProtect login answer has no LoginResult');
  const token = element(result, 'Token');
  const ttl = /<(?:[A-Za-z0-9_-]+:)?TimeToLive[\s>][\s\S]*?<\/(?:[A-Za-z0-9_-]+:)?TimeToLive>/.exec(result)?.[0];
  const micro = ttl ? element(ttl, 'MicroSeconds') : undefined;
  if (!token || !micro || !/^\d{1,16}$/.test(micro.trim())) {
    throw new UpstreamMalformedError('the XProtect LoginResult lacks Token or TimeToLive/MicroSeconds');
  }
  return { token: xmlText(token.trim()), microSeconds: Number(micro.trim()) };
}

/** The session fields that store a downstream grant. */
export async function sealDownstream(cipher: TokenCipher, sid: string, grant: DownstreamGrant, now: number) {
  return {
    extras: await cipher.encrypt(JSON.stringify(grant.values), fieldContext(sid, 'extras')),
    extrasExpiresAt: grant.expiresAt,
    extrasLifetime: grant.expiresAt - now,
    instanceId: grant.instanceId,
  };
}
