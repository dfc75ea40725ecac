/**
 * The bench's child processes (dynalite, the provider, the broker, the floor): each a TypeScript
 * file run by node with tsx as a loader, speaking to the bench over the IPC channel. A child says
 * `{ kind: 'ready', ... }` when it serves; the bench asks it questions (`ask`) and gets one answer
 * of the same kind back.
 */
import { fork, type ChildProcess } from 'node:child_process';

export interface Child {
  readonly process: ChildProcess;
  readonly ready: Record<string, unknown>;
  /** Sends `{ kind, ...body }` and resolves the child's next message of that kind. */
  ask<T = Record<string, unknown>>(kind: string, body?: Record<string, unknown>): Promise<T>;
  /** Bytes the child wrote to its stdout so far (the broker's logs). */
  stdoutBytes(): number;
  stop(): Promise<void>;
}

export async function startChild(file: string, env: NodeJS.ProcessEnv = {}): Promise<Child> {
  // BENCH_PROFILE=<dir>: each child writes a CPU profile there when the bench stops it (node --cpu-prof).
  const dir = process.env['BENCH_PROFILE'];
  const profile = dir ? ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${dir}`] : [];
  const child = fork(file, [], {
    execArgv: ['--import', 'tsx', '--no-warnings', ...profile],
    env: { PATH: process.env['PATH'], NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let bytes = 0;
  child.stdout!.on('data', (chunk: Buffer) => (bytes += chunk.length));
  const waiting = new Map<string, { resolve: (message: Record<string, unknown>) => void; reject: (err: Error) => void }[]>();
  child.on('message', (message: Record<string, unknown>) => {
    waiting.get(String(message['kind']))?.shift()?.resolve(message);
  });
  child.once('exit', (code) => {
    for (const [kind, list] of waiting) for (const w of list.splice(0)) w.reject(new Error(`${file} exited (${code}) while the bench waited for "${kind}"`));
  });
  const next = (kind: string) => new Promise<Record<string, unknown>>((resolve, reject) => {
    const list = waiting.get(kind) ?? [];
    list.push({ resolve, reject });
    waiting.set(kind, list);
  });
  const ready = await next('ready');
  return {
    process: child,
    ready,
    async ask<T>(kind: string, body: Record<string, unknown> = {}) {
      const answer = next(kind);
      child.send({ kind, ...body });
      return (await answer) as T;
    },
    stdoutBytes: () => bytes,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

/**
 * For a child: times each request its server answers (from the request's arrival to `end()`),
 * kept until the bench takes them (`take`), and answers `cpu` with the process's CPU time.
 */
export function serveTimings(server: import('node:http').Server, label: (req: import('node:http').IncomingMessage) => string | undefined): void {
  const listeners = server.listeners('request') as ((req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void)[];
  server.removeAllListeners('request');
  let taken: { what: string; ms: number }[] = [];
  server.on('request', (req, res) => {
    const started = performance.now();
    const what = label(req);
    if (what !== undefined) {
      const end = res.end.bind(res) as (...args: unknown[]) => typeof res;
      res.end = ((...args: unknown[]) => {
        taken.push({ what, ms: performance.now() - started });
        return end(...args);
      }) as typeof res.end;
    }
    for (const listener of listeners) listener.call(server, req, res);
  });
  answerBench({
    take: () => {
      const out = taken;
      taken = [];
      return { timings: out };
    },
  });
}

/** Answers the bench's questions: each handler's result goes back with the question's kind. */
export function answerBench(handlers: Record<string, (message: Record<string, unknown>) => Record<string, unknown> | Promise<Record<string, unknown>>>): void {
  const all: typeof handlers = { cpu: () => ({ ...process.cpuUsage() }), ...handlers };
  // Stopped by the bench: exit normally, so a CPU profile (BENCH_PROFILE) is written.
  process.once('SIGTERM', () => process.exit(0));
  process.on('message', async (message: Record<string, unknown>) => {
    const kind = String(message['kind']);
    const handler = all[kind];
    if (handler) process.send!({ kind, ...(await handler(message)) });
  });
}
