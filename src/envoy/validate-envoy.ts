// `otoroshi-xds validate --envoy`: the translated config checked by the real Envoy
// (`envoy --mode validate` on a static bootstrap), and what it rejects traced back to objects.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { staticBootstrap, type ConfigJson } from './static-config.js';

export interface EnvoyVerdict {
  ok: boolean;
  /** Envoy's own words (the critical log line when it rejects). */
  message: string;
}

const OUTPUT_LIMIT = 64 * 1024;

/** The reason in Envoy's validate-mode output: the text after `error initializing configuration '...': `. */
export function envoyRejection(output: string): string {
  const m = /error initializing configuration '[^']*':\s*([\s\S]*)$/m.exec(output);
  const text = (m?.[1] ?? output).trim();
  return text.length > 0 ? text : 'envoy --mode validate failed without a message';
}

/** Runs `bin --mode validate` on the static bootstrap of `set`; bounded in time (timeoutMs) and output. */
export async function envoyValidate(bin: string, set: ConfigJson, timeoutMs = 60_000): Promise<EnvoyVerdict> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-validate-'));
  const file = path.join(dir, 'bootstrap.json');
  fs.writeFileSync(file, JSON.stringify(staticBootstrap(set)), { mode: 0o600 });
  try {
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn(
        bin,
        ['--mode', 'validate', '-c', file, '--disable-hot-restart', '-l', 'error', '--log-format', '%v'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      const add = (d: Buffer): void => {
        if (output.length < OUTPUT_LIMIT) output += d.toString('utf8');
      };
      child.stdout.on('data', add);
      child.stderr.on('data', add);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('close', (c) => {
        clearTimeout(timer);
        resolve({ code: c, output });
      });
    });
    return code === 0 && !/error initializing configuration/.test(output)
      ? { ok: true, message: output.trim() }
      : { ok: false, message: envoyRejection(output) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
