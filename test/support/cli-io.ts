/** The CLI's `Io` in memory: what it printed, and files it reads and writes in a plain object. */
import type { Io } from '../../lib/cli/main.js';

export function memoryIo(files: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    read: (p) => {
      if (!(p in files)) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT', path: p });
      return files[p]!;
    },
    write: (p, t) => void (files[p] = t),
  };
  return { io, out, err, files };
}
