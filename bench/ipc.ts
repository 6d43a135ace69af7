// Parent ↔ child messages of the benchmarks (fork + IPC).
import type { ChildProcess } from 'node:child_process';

export type Msg = { type: string; [k: string]: unknown };

/** The next message of `type` from `child`; rejects on timeout or when the child exits first. */
export function next(child: ChildProcess, type: string, timeoutMs: number, what: string): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      cleanup();
      reject(new Error(`timeout after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const onMsg = (m: Msg): void => {
      if (m && m.type === type) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (code: number | null, sig: string | null): void => {
      cleanup();
      reject(new Error(`${what}: child exited (${code ?? sig}) before "${type}"`));
    };
    const cleanup = (): void => {
      clearTimeout(t);
      child.off('message', onMsg);
      child.off('exit', onExit);
    };
    child.on('message', onMsg);
    child.on('exit', onExit);
  });
}
