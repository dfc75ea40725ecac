/**
 * The configuration document of CONTRACT.md, as a valibot schema (shape) plus the rules that
 * tie fields together (meaning). `parseConfig` runs both and names every bad field by its path.
 *
 * The schemas are built on first use, not when the module loads: a cold start that takes the
 * configuration the stack prepared (prepared.ts) never validates, and building them is about a
 * millisecond of valibot's first runs.
 */
import * as v from 'valibot';

function build() {
  const nonEmpty = v.pipe(v.string(), v.nonEmpty('must not be empty'));
  const positiveInt = v.pipe(v.number(), v.integer('must be an integer'), v.minValue(1, 'must be at least 1'));

  const SecretRefSchema = v.union(
    [
      v.strictObject({ secretsManager: nonEmpty, jsonKey: v.optional(nonEmpty) }),
      v.strictObject({ env: nonEmpty }),
      v.strictObject({ value: nonEmpty }),
    ],
    'must be {"secretsManager": "<name or ARN>", "jsonKey"?: "<field>"}, {"env": "VAR"} or {"value": "..."}',
  );

  const stringMap = v.record(v.string(), v.string());

  const ProviderSchema = v.strictObject({
    issuer: v.optional(nonEmpty),
    authorizationEndpoint: v.optional(nonEmpty),
    tokenEndpoint: v.optional(nonEmpty),
    jwksUri: v.optional(nonEmpty),
    revocationEndpoint: v.optional(nonEmpty),
    endSessionEndpoint: v.optional(nonEmpty),
    userinfoEndpoint: v.optional(nonEmpty),
    clientId: nonEmpty,
    clientSecret: v.optional(SecretRefSchema),
    clientAuth: v.optional(v.picklist(['client_secret_basic', 'client_secret_post', 'none']), 'client_secret_basic'),
    tokenRequestFormat: v.optional(v.picklist(['form', 'json']), 'form'),
    /** For providers whose token responses omit `token_type` (RFC 6749 §5.1 requires it): the type to assume. */
    defaultTokenType: v.optional(v.literal('Bearer')),
    /** `[]`: no `scope` parameter at all (RFC 6749 §3.3: scope is optional). */
    scopes: v.optional(v.array(nonEmpty), ['openid']),
    pkce: v.optional(v.boolean(), true),
    authorizationParams: v.optional(stringMap, {}),
    forwardParams: v.optional(v.array(nonEmpty), []),
    tokenParams: v.optional(stringMap, {}),
    refreshParams: v.optional(stringMap, {}),
    /**
     * OpenID Connect Back-Channel Logout 1.0: the provider posts logout tokens to
     * `{publicUrl}/backchannel-logout/{name}` and the broker ends the matching sessions.
     */
    backchannelLogout: v.optional(v.boolean(), false),
    downstreamLogin: v.optional(
      v.strictObject({
        kind: v.literal('xprotect'),
        url: nonEmpty,
      }),
    ),
  });

  const ClientSchema = v.strictObject({
    type: v.picklist(['web', 'native']),
    redirectUris: v.pipe(v.array(nonEmpty), v.minLength(1, 'must list at least one URI')),
    allowedOrigins: v.optional(v.array(nonEmpty), []),
    providers: v.pipe(v.array(nonEmpty), v.minLength(1, 'must list at least one provider')),
    postLogoutRedirectUri: v.optional(nonEmpty),
    /** The algorithm of the broker's ID tokens for this client. */
    idTokenSigningAlg: v.optional(v.picklist(['RS256', 'ES256']), 'RS256'),
    /** Web: the APIs (names under the top-level `apis`) this client may call through `/api/{api}/...`. */
    apis: v.optional(v.array(nonEmpty), []),
    /**
     * Web: `tokens` (v1's behaviour) hands access and ID tokens to the page; `proxy` hands out none,
     * and the page calls its APIs through the broker's proxy.
     */
    tokenDelivery: v.optional(v.picklist(['tokens', 'proxy']), 'tokens'),
  });

  /** An API the broker's proxy calls for web apps, with the session's access token (`/api/{name}/...`). */
  const ApiSchema = v.strictObject({
    /** The base URL; a proxied path is appended below it. https, except on loopback. */
    url: nonEmpty,
    /** The provider whose access tokens this API accepts: only sessions at that provider may call it. */
    provider: nonEmpty,
    /** The largest request and answer body, in bytes, each way. */
    maxBodyBytes: v.optional(positiveInt),
    /** How long the broker waits for the API's whole answer, in seconds. */
    timeoutSeconds: v.optional(positiveInt),
  });

  const TtlSchema = v.strictObject({
    loginSeconds: v.optional(positiveInt, 600),
    codeSeconds: v.optional(positiveInt, 60),
    sessionIdleSeconds: v.optional(positiveInt, 1_209_600),
    sessionMaxSeconds: v.optional(positiveInt, 7_776_000),
    reuseGraceSeconds: v.optional(v.pipe(v.number(), v.integer('must be an integer'), v.minValue(0, 'must not be negative')), 30),
    minAccessTokenSeconds: v.optional(v.pipe(v.number(), v.integer('must be an integer'), v.minValue(0, 'must not be negative')), 60),
  });

  const StorageSchema = v.strictObject({
    /**
     * How new ciphertexts in the table are written (lib/crypto/token-cipher.ts): `jwe` (the JWE
     * Compact Serialization, which every release reads) or `compact` (the same JWE without its
     * spelled-out header, about 275 bytes less a session; read from this release on). Both are
     * always read.
     */
    ciphertexts: v.optional(v.picklist(['jwe', 'compact']), 'jwe'),
  });

  const ConfigSchema = v.strictObject({
    $schema: v.optional(v.string()),
    publicUrl: nonEmpty,
    providers: v.record(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,64}$/, 'provider names use A-Z a-z 0-9 _ - only')), ProviderSchema),
    clients: v.record(v.pipe(v.string(), v.regex(/^[A-Za-z0-9._~-]{1,128}$/, 'client ids use A-Z a-z 0-9 . _ ~ - only')), ClientSchema),
    tokenEncryptionKeys: v.optional(SecretRefSchema),
    /** The broker's ID-token signing keys (a JSON key ring of private JWKs). */
    signingKeys: v.optional(SecretRefSchema),
    /** The APIs web clients may call through the broker's proxy. */
    apis: v.optional(v.record(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,64}$/, 'API names use A-Z a-z 0-9 _ - only')), ApiSchema), {}),
    ttl: v.optional(TtlSchema, {}),
    storage: v.optional(StorageSchema, {}),
  });
  return { SecretRefSchema, ProviderSchema, ClientSchema, ApiSchema, TtlSchema, StorageSchema, ConfigSchema };
}

type Schemas = ReturnType<typeof build>;
let built: Schemas | undefined;

/** The configuration document's schema (and its parts), built once, on first use. */
export const schemas = (): Schemas => (built ??= build());

export type SecretRef = v.InferOutput<Schemas['SecretRefSchema']>;
export type RawConfig = v.InferOutput<Schemas['ConfigSchema']>;
export type ProviderConfig = v.InferOutput<Schemas['ProviderSchema']>;
export type ClientConfig = v.InferOutput<Schemas['ClientSchema']>;
export type TtlConfig = v.InferOutput<Schemas['TtlSchema']>;
export type ApiConfig = v.InferOutput<Schemas['ApiSchema']>;
export type StorageConfig = v.InferOutput<Schemas['StorageSchema']>;
