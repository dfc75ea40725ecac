/**
 * Item sizes as DynamoDB bills them (Developer Guide, "Item sizes and formats"): for each attribute
 * the UTF-8 length of its name plus its value: a string's UTF-8 length; a number about one byte
 * per two significant digits plus one; binary its length. A write costs one write unit per KB
 * (1,024 bytes, rounded up) of the larger of the item before and after it; a strongly consistent
 * read one read unit per 4 KB.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';

export type Item = Record<string, AttributeValue>;

function valueSize(v: AttributeValue): number {
  if (v.S !== undefined) return Buffer.byteLength(v.S, 'utf8');
  if (v.N !== undefined) {
    const digits = v.N.replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
    return Math.ceil(Math.max(1, digits.length) / 2) + 1;
  }
  if (v.B !== undefined) return v.B.length;
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
  throw new TypeError('an attribute type the broker does not store');
}

export function itemSize(item: Item | undefined): number {
  if (!item) throw new TypeError('no such item');
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += Buffer.byteLength(name, 'utf8') + valueSize(value);
  return size;
}

export const writeUnits = (bytes: number): number => Math.max(1, Math.ceil(bytes / 1024));
export const readUnits = (bytes: number): number => Math.max(1, Math.ceil(bytes / 4096));

/** A JWE of the token cipher: base64url header, empty encrypted key, iv, ciphertext, tag. */
const JWE = /^([A-Za-z0-9_-]+)\.\.([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+)$/;

/**
 * The item as `storage.ciphertexts: "compact"` writes it: each value the token cipher wrote as a
 * JWE (its own header: dir, A256GCM, a key id, nothing else) as `kid~iv.ciphertext.tag`, the same
 * bytes otherwise (lib/crypto/token-cipher.ts defines the compact form as exactly this).
 */
export function withCompactCiphertexts(item: Item): Item {
  const out: Item = {};
  for (const [name, value] of Object.entries(item)) {
    const m = value.S === undefined ? null : JWE.exec(value.S);
    const kid = m ? kidOf(m[1]!) : undefined;
    out[name] = m && kid !== undefined ? { S: `${kid}~${m[2]!}` } : value;
  }
  return out;
}

function kidOf(header: string): string | undefined {
  try {
    const { kid } = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { kid?: unknown };
    const own = typeof kid === 'string' && Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid }), 'utf8').toString('base64url') === header;
    return own ? kid : undefined;
  } catch {
    return undefined;
  }
}
