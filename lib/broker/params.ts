/** Reading request parameters: each at most once (RFC 6749 §3.1, §3.2). */
import { InvalidRequestError } from '../errors.js';

export function single(params: URLSearchParams, name: string): string | undefined {
  const all = params.getAll(name);
  if (all.length > 1) throw new InvalidRequestError(`"${name}" must not be repeated`);
  const value = all[0];
  return value === '' ? undefined : value;
}

export function required(params: URLSearchParams, name: string): string {
  const value = single(params, name);
  if (value === undefined) throw new InvalidRequestError(`"${name}" is required`);
  return value;
}

/** RFC 7636 §4.1: 43 to 128 characters of [A-Z a-z 0-9 - . _ ~]. */
export const PKCE_VALUE = /^[A-Za-z0-9._~-]{43,128}$/;

/** Appends parameters to a URI, keeping its own query (RFC 6749 §3.1.2). */
export function withParams(uri: string, params: Record<string, string | undefined>): string {
  const url = new URL(uri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.append(k, v);
  return url.href;
}
