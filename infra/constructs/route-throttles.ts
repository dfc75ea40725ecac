/**
 * Per-route throttling of the HTTP API stage: every route of functions/manifest.ts gets the limits
 * of its throttle class (CloudFormation `RouteSettings`, keyed by route key), so a flood of one
 * route (anonymous `GET /login`) cannot take the token endpoints' share. Sizing: docs/deploy.md,
 * "Throttles".
 */
import type { ThrottleClass } from '../../functions/manifest.js';
import { OperatorInputError } from '../config.js';

export interface ThrottleLimits {
  /** Steady-state requests per second (token bucket refill). */
  readonly rateLimit: number;
  /** Requests allowed in a burst (bucket size). */
  readonly burstLimit: number;
}

export type RouteThrottles = Readonly<Partial<Record<ThrottleClass, ThrottleLimits>>>;

/**
 * The defaults. `login` (`/login`, `/callback`) is the anonymous front: each request writes an
 * item, and each callback costs an authenticated call at the provider's token endpoint, so it
 * gets a tenth of the token endpoints. Discovery and `/jwks` are cached by their readers; a
 * provider's back-channel logouts come one per ended provider session.
 */
export const DEFAULT_ROUTE_THROTTLES: Readonly<Record<ThrottleClass, ThrottleLimits>> = {
  login: { rateLimit: 10, burstLimit: 20 },
  token: { rateLimit: 100, burstLimit: 200 },
  api: { rateLimit: 100, burstLimit: 200 },
  discovery: { rateLimit: 10, burstLimit: 20 },
  jwks: { rateLimit: 20, burstLimit: 40 },
  backchannel: { rateLimit: 10, burstLimit: 20 },
};

const CLASSES = Object.keys(DEFAULT_ROUTE_THROTTLES) as ThrottleClass[];

/** The defaults with `overrides` applied. */
export function resolveRouteThrottles(overrides: RouteThrottles = {}): Readonly<Record<ThrottleClass, ThrottleLimits>> {
  return Object.fromEntries(CLASSES.map((c) => [c, overrides[c] ?? DEFAULT_ROUTE_THROTTLES[c]])) as Record<ThrottleClass, ThrottleLimits>;
}

/**
 * The `routeThrottles` context value (`-c routeThrottles='{"login":{"rateLimit":5,"burstLimit":10}}'`
 * or an object in cdk.json), checked: known classes only, both limits positive integers, a burst
 * no smaller than the rate. Every problem is named at once.
 */
export function parseRouteThrottles(value: unknown): RouteThrottles | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  let parsed: unknown = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new OperatorInputError('context routeThrottles must be a JSON object, e.g. {"login":{"rateLimit":5,"burstLimit":10}}');
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new OperatorInputError('context routeThrottles must be an object of throttle classes');
  const errors: string[] = [];
  const out: Partial<Record<ThrottleClass, ThrottleLimits>> = {};
  for (const [name, limits] of Object.entries(parsed)) {
    if (!(CLASSES as string[]).includes(name)) {
      errors.push(`routeThrottles.${name}: unknown throttle class (one of ${CLASSES.join(', ')})`);
      continue;
    }
    const l = limits as { rateLimit?: unknown; burstLimit?: unknown } | null;
    const ok = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n > 0;
    if (!ok(l?.rateLimit)) errors.push(`routeThrottles.${name}.rateLimit: a positive integer`);
    if (!ok(l?.burstLimit)) errors.push(`routeThrottles.${name}.burstLimit: a positive integer`);
    if (ok(l?.rateLimit) && ok(l?.burstLimit)) {
      if (l.burstLimit < l.rateLimit) errors.push(`routeThrottles.${name}.burstLimit: at least rateLimit`);
      else out[name as ThrottleClass] = { rateLimit: l.rateLimit, burstLimit: l.burstLimit };
    }
  }
  if (errors.length > 0) throw new OperatorInputError(`context routeThrottles:\n  ${errors.join('\n  ')}`);
  return out;
}
