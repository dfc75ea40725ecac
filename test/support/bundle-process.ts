/**
 * A function's bundle in a fresh process, as Lambda would load it: imported (its init included),
 * its `handler` called once with `event`, the result printed as JSON on the last line of stdout.
 */
import { spawn } from 'node:child_process';

export interface BundleRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function invokeBundle(file: string, event: unknown, env: NodeJS.ProcessEnv): Promise<BundleRun> {
  const code = `const { handler } = await import(${JSON.stringify(file)}); console.log(JSON.stringify(await handler(${JSON.stringify(event)})));`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
