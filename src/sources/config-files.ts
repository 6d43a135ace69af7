// The one rule for reading a config directory (server, `validate`, `translate`): YAML files under
// it, hidden entries skipped (ConfigMap `..data`), symbolic links followed only while they stay
// inside the directory (a ConfigMap mount works; a link to /etc/shadow is refused and reported),
// and size bounds per file and in total (a refused file is reported; the others are served).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ConfigError } from '../model/types.js';

export interface ConfigFile {
  /** Path relative to the directory, posix separators. */
  rel: string;
  abs: string;
  size: number;
  mtimeMs: number;
}

export interface ConfigLimits {
  maxFileBytes: number;
  maxTotalBytes: number;
}

export const DEFAULT_LIMITS: ConfigLimits = { maxFileBytes: 2 * 1024 * 1024, maxTotalBytes: 32 * 1024 * 1024 };

export interface ConfigListing {
  files: ConfigFile[];
  /** Files refused (link leaving the directory, too large), one error each; a notice per `.json` file. */
  errors: ConfigError[];
}

const YAML = /\.ya?ml$/i;
/** `.json` files are not read: an Otoroshi export is converted with `import`. */
const JSON_EXT = /\.json$/i;

export function jsonFileNotice(rel: string): ConfigError {
  return {
    code: 'OXDS_SKIPPED_FILE',
    message:
      `${rel} is not read (only .yaml / .yml files are): ` +
      `if it is an Otoroshi export, convert it with \`otoroshi-xds import ${rel}\``,
    file: rel,
    severity: 'notice',
  };
}

function refused(rel: string, message: string): ConfigError {
  return { code: 'OXDS_YAML_PARSE', message, file: rel, doc: 0, severity: 'error' };
}

function inside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/** Lists the YAML files of `dir` (sorted); throws only when `dir` itself cannot be read. */
export async function listConfigFiles(dir: string, limits: ConfigLimits = DEFAULT_LIMITS): Promise<ConfigListing> {
  const root = await fs.realpath(dir);
  const found: ConfigFile[] = [];
  const errors: ConfigError[] = [];
  const json: string[] = [];
  const visited = new Set<string>();
  const walk = async (abs: string, rel: string): Promise<void> => {
    const real = rel === '' ? root : await fs.realpath(abs).catch(() => undefined);
    if (real === undefined || visited.has(real)) return; // vanished, or a link loop
    visited.add(real);
    const names = (rel === '' ? await fs.readdir(root) : await fs.readdir(abs).catch(() => [] as string[])).sort();
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const childAbs = path.join(abs, name);
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const target = await fs.realpath(childAbs).catch(() => undefined);
      if (target === undefined) continue; // dangling link or vanished
      if (!inside(root, target)) {
        if (YAML.test(name))
          errors.push(refused(childRel, `symbolic link to ${target}, outside the config directory: not read`));
        continue;
      }
      const st = await fs.stat(childAbs).catch(() => undefined);
      if (st === undefined) continue;
      if (st.isDirectory()) await walk(childAbs, childRel);
      else if (st.isFile() && YAML.test(name))
        found.push({ rel: childRel, abs: childAbs, size: st.size, mtimeMs: st.mtimeMs });
      else if (st.isFile() && JSON_EXT.test(name)) json.push(childRel);
    }
  };
  await walk(dir, '');
  found.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const files: ConfigFile[] = [];
  let total = 0;
  for (const f of found) {
    if (f.size > limits.maxFileBytes) {
      errors.push(
        refused(
          f.rel,
          `file is ${f.size} bytes, more than the limit of ${limits.maxFileBytes} (--max-config-file-bytes): not read`,
        ),
      );
      continue;
    }
    if (total + f.size > limits.maxTotalBytes) {
      errors.push(
        refused(
          f.rel,
          `the config directory exceeds ${limits.maxTotalBytes} bytes (--max-config-total-bytes) with this file: ` +
            `not read`,
        ),
      );
      continue;
    }
    total += f.size;
    files.push(f);
  }
  errors.push(...json.sort().map(jsonFileNotice));
  return { files, errors };
}
