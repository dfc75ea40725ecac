/**
 * The cold-start floor of `npm run bench` (bench/procs/cold-floor.ts) does the work it stands for:
 * bundled as the functions are and run in a function's environment, it reads exactly that
 * function's secrets in one request and parses them; with none to read, it sends nothing.
 */
import { describe, expect, it } from 'vitest';
import { BENCH_SECRETS, coldFloorFile, lambdaEnv } from '../../bench/cold-start.js';
import { SECRET_IDS_ENV } from '../../functions/handler.js';
import { invokeBundle } from '../support/bundle-process.js';
import { secretsManagerStandIn } from '../support/secrets-manager.js';

async function runFloor(env: NodeJS.ProcessEnv): Promise<unknown> {
  const run = await invokeBundle(coldFloorFile(), undefined, env);
  if (run.status !== 0) throw new Error(`exit ${run.status}: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

describe('the cold-start floor', () => {
  it('reads the function’s secrets in one BatchGetSecretValue and parses them', async () => {
    const sm = await secretsManagerStandIn(BENCH_SECRETS);
    try {
      const env = lambdaEnv('refresh', sm.url);
      const ids = JSON.parse(env[SECRET_IDS_ENV]!) as string[];
      expect(ids.length).toBeGreaterThan(1);
      expect(await runFloor(env)).toEqual({ statusCode: 204, body: '', secrets: ids.length, keyed: true });
      expect(sm.calls).toEqual([{ operation: 'BatchGetSecretValue', ids }]);
    } finally {
      await sm.close();
    }
  });

  it('sends nothing for a function that reads no secrets at init', async () => {
    const sm = await secretsManagerStandIn(BENCH_SECRETS);
    try {
      const env = lambdaEnv('start-login', sm.url);
      expect(env[SECRET_IDS_ENV]).toBeUndefined();
      expect(await runFloor(env)).toEqual({ statusCode: 204, body: '', secrets: 0, keyed: false });
      expect(sm.calls).toEqual([]);
    } finally {
      await sm.close();
    }
  });

  it('fails when Secrets Manager refuses, as a function would', async () => {
    const sm = await secretsManagerStandIn(BENCH_SECRETS, { denyBatch: true });
    try {
      await expect(runFloor(lambdaEnv('refresh', sm.url))).rejects.toThrow(/answered 400/);
    } finally {
      await sm.close();
    }
  });
});
