/**
 * A configuration parsed ahead of time: the stack parses the document when it bundles the
 * functions (infra/constructs/broker-function.ts) and ships the result beside it, so that a cold
 * start reads it instead of running the validator again (valibot and the rules between fields:
 * 2-4 ms of every cold start on this machine, docs/design.md, "What a request costs").
 *
 * It is a cache, never a second source: it holds the very text it was parsed from and the runtime
 * it was parsed for, and is taken only when both are those of this start. An operator who edits
 * the document in the code asset, or a stale file, gets the document parsed as before (and its
 * errors), never a configuration the document does not say. This module loads no validator.
 */
import type { Config, ParseOptions } from './parse.js';

const FORMAT = 'oauth-broker/prepared-config/2';

interface PreparedDocument {
  readonly format: typeof FORMAT;
  readonly runtime: ParseOptions['runtime'];
  /** The configuration document, exactly as parsed. */
  readonly source: string;
  /** The parsed configuration, its one set (`allowedOrigins`) as a list. */
  readonly config: Omit<Config, 'allowedOrigins'> & { readonly allowedOrigins: readonly string[] };
}

/** The prepared form of `config`, parsed from `source` for `runtime`. */
export function prepareConfig(source: string, config: Config, runtime: ParseOptions['runtime']): string {
  const document: PreparedDocument = { format: FORMAT, runtime, source, config: { ...config, allowedOrigins: [...config.allowedOrigins] } };
  return JSON.stringify(document);
}

/**
 * The configuration a prepared document holds, when it was parsed from exactly `source` for
 * `runtime`; undefined otherwise (another document, another runtime or format, unreadable), for
 * the caller to parse `source` itself.
 */
export function preparedConfig(prepared: string, source: string, runtime: ParseOptions['runtime']): Config | undefined {
  let document: PreparedDocument;
  try {
    document = JSON.parse(prepared) as PreparedDocument;
  } catch {
    return undefined;
  }
  if (document?.format !== FORMAT || document.runtime !== runtime || document.source !== source) return undefined;
  const { config } = document;
  const isObject = (value: unknown) => typeof value === 'object' && value !== null;
  // Only the stack writes it; a file written by hand that has lost its shape is parsed instead.
  if (!isObject(config) || !Array.isArray(config.allowedOrigins) || !isObject(config.providers) || !isObject(config.clients) || !isObject(config.ttl) || !isObject(config.storage) || !isObject(config.apis)) return undefined;
  try {
    // The keys JSON leaves out when undefined, as the parser returns them.
    return deepFreeze({
      ...config,
      tokenEncryptionKeys: config.tokenEncryptionKeys,
      signingKeys: config.signingKeys,
      allowedOrigins: new Set(config.allowedOrigins),
    });
  } catch {
    return undefined;
  }
}

/** Freezes a parsed configuration all the way down: it is shared by every request. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof Set)) {
    // Into objects already frozen too: a default value valibot hands every parse is frozen once.
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
