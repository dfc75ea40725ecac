/**
 * A second token obtained with the upstream access token after each login and upstream refresh
 * (`downstreamLogin`), renewed before it expires. One small interface per `kind`, obtained from
 * `downstreamFor` by the callback and by refresh alike. Kind `xprotect`: Milestone XProtect's
 * ServerCommandService SOAP `Login`, whose `Token` apps receive as `vms_token`.
 */
import { randomUUID } from 'node:crypto';
import type { Provider } from '../config/parse.js';
import { UpstreamMalformedError, UpstreamUnavailableError } from '../errors.js';
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

export interface DownstreamLogin {
  /** Logs in with the upstream access token; `instanceId` undefined at a new login. */
  login(rt: Runtime, accessToken: string, instanceId: string | undefined, http: HttpOptions): Promise<DownstreamGrant>;
}

/** The provider's downstream login, if it has one. */
export function downstreamFor(provider: Provider): DownstreamLogin | undefined {
  const config = provider.downstreamLogin;
  if (!config) return undefined;
  switch (config.kind) {
    case 'xprotect':
      return xprotect(config.url);
  }
}

/** Renew when less than this share of the token's lifetime is left (and at least 60 s before). */
export function renewalDue(grantExpiresAt: number | undefined, lifetime: number | undefined, now: number): boolean {
  if (grantExpiresAt === undefined) return true;
  const margin = Math.max(60, Math.floor((lifetime ?? 0) / 5));
  return grantExpiresAt - now <= margin;
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

const SOAP_ACTION = 'http://videoos.net/2/XProtectCSServerCommand/IServerCommandService/Login';
const NS = 'http://videoos.net/2/XProtectCSServerCommand';

function xprotect(url: string): DownstreamLogin {
  return {
    async login(rt, accessToken, instanceId, http) {
      const id = instanceId ?? randomUUID();
      const body =
        '<?xml version="1.0" encoding="utf-8"?>' +
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>' +
        `<Login xmlns="${NS}"><instanceId>${id}</instanceId><currentToken></currentToken></Login>` +
        '</s:Body></s:Envelope>';
      const res = await upstreamRequest(url, {
        method: 'POST',
        headers: { 'content-type': 'text/xml; charset=utf-8', soapaction: SOAP_ACTION, authorization: `bearer ${accessToken}` },
        body,
      }, http);
      const { token, microSeconds } = parseLoginResult(res.status, res.text);
      return { values: { vms_token: token }, expiresAt: rt.now() + Math.floor(microSeconds / 1_000_000), instanceId: id };
    },
  };
}

/** One element of a scanned document: its local name (prefix dropped), and where its content starts and ends. */
interface Element {
  readonly name: string;
  readonly start: number;
  readonly end: number;
}

const NAME = /^(?:[A-Za-z0-9_-]+:)?([A-Za-z0-9_.-]+)$/;

/**
 * Finds the first element named `name` (any prefix) inside `[from, to)`, with the end of its
 * matching close tag. A single left-to-right scan with `indexOf`, no regular expression over the
 * document, so the time is linear in the answer's size whatever it holds (unclosed tags included).
 * Nested elements of the same name are counted.
 */
function findElement(xml: string, name: string, from: number, to: number): Element | undefined {
  let depth = 0;
  let contentStart = -1;
  let i = from;
  while (i < to) {
    const lt = xml.indexOf('<', i);
    if (lt < 0 || lt >= to) return undefined;
    const gt = xml.indexOf('>', lt + 1);
    if (gt < 0 || gt >= to) return undefined;
    let tag = xml.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('?') || tag.startsWith('!')) continue;
    const closing = tag.startsWith('/');
    if (closing) tag = tag.slice(1);
    const selfClosing = !closing && tag.endsWith('/');
    if (selfClosing) tag = tag.slice(0, -1);
    const space = tag.search(/\s/);
    const local = NAME.exec(space < 0 ? tag : tag.slice(0, space))?.[1];
    if (local !== name) continue;
    if (closing) {
      if (depth === 0) continue;
      depth--;
      if (depth === 0) return { name, start: contentStart, end: lt };
    } else if (selfClosing) {
      if (depth === 0) return { name, start: i, end: i };
    } else {
      if (depth === 0) contentStart = i;
      depth++;
    }
  }
  return undefined;
}

/** The text content of an element that holds only text (no child elements). */
function textOf(xml: string, el: Element | undefined): string | undefined {
  if (!el) return undefined;
  const text = xml.slice(el.start, el.end);
  return text.includes('<') ? undefined : text;
}

function xmlText(value: string): string {
  return value.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

/**
 * Reads `Token` and `TimeToLive/MicroSeconds` of a `LoginResult`. A SOAP fault (HTTP 500 or 200,
 * the VMS's refusal) or any other answer is a 502; a 5xx without a fault (a VMS or a proxy in
 * front of it that is down) is the provider unavailable, 503, as the contract maps every 5xx.
 */
export function parseLoginResult(status: number, xml: string): { token: string; microSeconds: number } {
  if (findElement(xml, 'Fault', 0, xml.length)) {
    throw new UpstreamMalformedError(`the XProtect login answered a SOAP fault (HTTP ${status})`);
  }
  if (status >= 500) throw new UpstreamUnavailableError(`the XProtect login answered HTTP ${status}`);
  if (status !== 200) throw new UpstreamMalformedError(`the XProtect login answered HTTP ${status}`);
  const result = findElement(xml, 'LoginResult', 0, xml.length);
  if (!result) throw new UpstreamMalformedError('the XProtect login answer has no LoginResult');
  const token = textOf(xml, findElement(xml, 'Token', result.start, result.end));
  const ttl = findElement(xml, 'TimeToLive', result.start, result.end);
  const micro = ttl ? textOf(xml, findElement(xml, 'MicroSeconds', ttl.start, ttl.end)) : undefined;
  if (!token || !micro || !/^\d{1,16}$/.test(micro.trim())) {
    throw new UpstreamMalformedError('the XProtect LoginResult lacks Token or TimeToLive/MicroSeconds');
  }
  return { token: xmlText(token.trim()), microSeconds: Number(micro.trim()) };
}
