/**
 * What the floor (bench/procs/floor.ts) and the bench that seeds its items share: the floor's
 * sealed values (AES-256-GCM, `iv.ciphertext.tag` in base64url, the item key and field bound in as
 * additional data, as the broker binds them) and its settings.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export interface FloorSettings {
  readonly endpoint: string;
  readonly table: string;
  readonly tokenEndpoint: string;
  readonly jwksUri: string;
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** The floor's own issuer, for its ID tokens. */
  readonly selfIssuer: string;
  /** AES-256 key, base64url. */
  readonly key: string;
  /** RSA private key (PKCS#8 PEM) for the ID tokens of code redemptions. */
  readonly signingKey: string;
  readonly idleSeconds: number;
  /** Where proxied calls go (`GET /api/<path>` becomes `GET <apiUrl>/<path>`). */
  readonly apiUrl: string;
  readonly minAccessTokenSeconds: number;
}

export const floorKey = (sid: string) => `floor#${sid}`;

export function seal(key: Buffer, plaintext: string, aad: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${iv.toString('base64url')}.${ct.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
}

export function open(key: Buffer, sealed: string, aad: string): string {
  const [iv, ct, tag] = sealed.split('.') as [string, string, string];
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
}
