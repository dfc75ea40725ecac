/**
 * What the CDK stack does to a configuration document before the functions read it: a document
 * that leaves `tokenEncryptionKeys` or `signingKeys` out gets a reference to the secret the stack
 * creates, `<stack name>/token-keys` and `<stack name>/signing-keys`. The synth (infra/config.ts)
 * and `broker config check --lambda` both use this, so the check accepts exactly what deploys.
 */

/** The default stack name (`-c stackName=...` changes it). */
export const DEFAULT_STACK_NAME = 'OAuthBroker';

/** The names of the key secrets a stack creates. */
export function createdSecretNames(stackName: string): { readonly keyRing: string; readonly signingKeys: string } {
  return { keyRing: `${stackName}/token-keys`, signingKeys: `${stackName}/signing-keys` };
}

export interface StackDocument {
  /** The document as the functions will read it. */
  readonly document: unknown;
  /** True when the document left `tokenEncryptionKeys` out and the stack's key ring was put in. */
  readonly usesCreatedKeyRing: boolean;
  /** True when the document left `signingKeys` out and the stack's signing keys were put in. */
  readonly usesCreatedSigningKeys: boolean;
}

/**
 * The document with the created secrets put in where it leaves them out; a name left undefined
 * injects nothing (then a document without that field is invalid in Lambda). Anything that is not
 * a JSON object is returned as is, for the validator to refuse.
 */
export function withCreatedKeySecrets(json: unknown, names: { readonly keyRing?: string; readonly signingKeys?: string }): StackDocument {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { document: json, usesCreatedKeyRing: false, usesCreatedSigningKeys: false };
  let document = json as Record<string, unknown>;
  const usesCreatedKeyRing = document['tokenEncryptionKeys'] === undefined && names.keyRing !== undefined;
  if (usesCreatedKeyRing) document = { ...document, tokenEncryptionKeys: { secretsManager: names.keyRing } };
  const usesCreatedSigningKeys = document['signingKeys'] === undefined && names.signingKeys !== undefined;
  if (usesCreatedSigningKeys) document = { ...document, signingKeys: { secretsManager: names.signingKeys } };
  return { document, usesCreatedKeyRing, usesCreatedSigningKeys };
}
