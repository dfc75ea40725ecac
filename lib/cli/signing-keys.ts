/**
 * ID-token signing key chores for operators (`npm run broker -- signing-keys ...`). A rotation
 * never fails a single verification at an app when its steps are spaced:
 *
 * 1. add a generation: it is published at `/jwks` (the next key) but signs nothing yet;
 * 2. promote it, once every container and every app's JWKS cache has seen it
 *    (`ROTATION_STEP_MINUTES`): ID tokens are signed with it from then on;
 * 3. retire the previous generation, once every ID token it signed has expired and every container
 *    signs with the new one (again `ROTATION_STEP_MINUTES` after step 2). `/end-session` accepts
 *    expired ID tokens as hints, so an app holding a token of a retired generation gets `400`
 *    there; waiting `ttl.sessionIdleSeconds` instead keeps even those working.
 */
import { KeyRingError } from '../crypto/key-ring.js';
import { ID_TOKEN_SECONDS } from '../oidc/id-token-issuer.js';
import { JWKS_MAX_AGE_SECONDS } from '../routes/jwks.js';
import { ES256_SUFFIX, generateSigningGenerationSync, keyIdOf, newGeneration, parseSigningKeyRing, type PrivateJwk } from '../oidc/signing-key-ring.js';
import { KEY_RING_MAX_AGE_MS } from '../runtime.js';

interface RingJson {
  current: string;
  keys: Record<string, PrivateJwk>;
}

/**
 * Minutes between rotation steps: a container reads the ring again after `KEY_RING_MAX_AGE_MS`,
 * apps may cache `/jwks` for its max-age, and an ID token lives `ID_TOKEN_SECONDS`.
 */
export const ROTATION_STEP_MINUTES = Math.ceil((KEY_RING_MAX_AGE_MS / 1000 + JWKS_MAX_AGE_SECONDS + ID_TOKEN_SECONDS) / 60);

function read(text: string): RingJson {
  parseSigningKeyRing(text); // every check of the runtime, with its messages
  return JSON.parse(text) as RingJson;
}

const write = (ring: RingJson) => `${JSON.stringify(ring, null, 2)}\n`;

const generations = (ring: RingJson) => Object.keys(ring.keys).filter((kid) => !kid.endsWith(ES256_SUFFIX));

/** A fresh ring with one generation. */
export function generateSigningRing(generation?: string): string {
  const id = generation ?? newGeneration([]);
  const ring = { current: id, keys: generateSigningGenerationSync(id) };
  read(JSON.stringify(ring));
  return write(ring);
}

/** Adds a new generation (not current); resolves the new ring text and the generation's id. */
export function addSigningGeneration(text: string, generation?: string): { ring: string; generation: string } {
  const ring = read(text);
  const id = generation ?? newGeneration(Object.keys(ring.keys));
  if (Object.hasOwn(ring.keys, keyIdOf(id, 'RS256')) || Object.hasOwn(ring.keys, keyIdOf(id, 'ES256'))) throw new KeyRingError(`the ring already has a generation "${id}"`);
  const next = { ...ring, keys: { ...ring.keys, ...generateSigningGenerationSync(id) } };
  read(JSON.stringify(next));
  return { ring: write(next), generation: id };
}

/** Makes a listed generation current. */
export function promoteSigningGeneration(text: string, generation: string): string {
  const ring = read(text);
  if (!generations(ring).includes(generation)) throw new KeyRingError(`the ring has no generation "${generation}"`);
  return write({ ...ring, current: generation });
}

/** Removes a generation that is not current (both its keys); `/jwks` stops publishing it. */
export function retireSigningGeneration(text: string, generation: string): string {
  const ring = read(text);
  if (!generations(ring).includes(generation)) throw new KeyRingError(`the ring has no generation "${generation}"`);
  if (ring.current === generation) throw new KeyRingError(`"${generation}" is current: promote another generation first`);
  const keys = { ...ring.keys };
  delete keys[keyIdOf(generation, 'RS256')];
  delete keys[keyIdOf(generation, 'ES256')];
  return write({ ...ring, keys });
}
