/** Shared configuration documents for unit tests: plain JSON-shaped objects, fresh on every call. */

export interface ConfigDoc {
  publicUrl: string;
  providers: Record<string, Record<string, unknown>>;
  clients: Record<string, Record<string, unknown>>;
  tokenEncryptionKeys?: Record<string, unknown>;
  ttl?: Record<string, unknown>;
  [key: string]: unknown;
}

/** One provider `p` (discovery via `issuer`), one web client `web` and one native client `app`. */
export function minimalConfigDoc(): ConfigDoc {
  return {
    publicUrl: 'https://auth.example.com',
    providers: {
      p: {
        issuer: 'https://idp.example.com',
        clientId: 'broker',
        clientSecret: { value: 'provider-secret' },
      },
    },
    clients: {
      web: {
        type: 'web',
        redirectUris: ['https://app.example.com/callback'],
        allowedOrigins: ['https://app.example.com'],
        providers: ['p'],
      },
      app: {
        type: 'native',
        redirectUris: ['com.example.app:/callback'],
        providers: ['p'],
      },
    },
  };
}

/** A document whose provider `p` is replaced by `provider` (merged over the minimal one). */
export function configDocWithProvider(provider: Record<string, unknown>): ConfigDoc {
  const doc = minimalConfigDoc();
  doc.providers['p'] = { ...doc.providers['p'], ...provider };
  return doc;
}
