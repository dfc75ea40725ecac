/**
 * What a call throws or a promise rejects with, checked to be an instance of `type`: the one
 * rejection helper of the unit tests. A call that does not fail fails the test.
 */
import { expect } from 'vitest';

type ErrorClass<E> = abstract new (...args: never[]) => E;

/** The error `fn` throws, asserted to be a `type`. */
export function thrownBy<E>(fn: () => unknown, type: ErrorClass<E>): E {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(type);
    return err as E;
  }
  throw new Error(`expected a ${type.name} to be thrown, and nothing was`);
}

/** The error `promise` rejects with, asserted to be a `type`. */
export async function rejectionOf<E>(promise: Promise<unknown>, type: ErrorClass<E>): Promise<E> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(type);
    return err as E;
  }
  throw new Error(`expected a rejection with a ${type.name}, and the promise resolved`);
}
