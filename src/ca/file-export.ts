// File mode's `exportSecret`: a Certificate's secret data written as files under
// `<dataDir>/secrets/<namespace>/<name>/` (0600), the way a Kubernetes Secret volume would show
// them. Only directories carrying our marker are ever removed.
import fs from 'node:fs';
import path from 'node:path';
import type { TlsCertificate } from '../model/types.js';
import { certificateSecretData } from './export.js';

const MARKER = '.managed-by-otoroshi-xds';
const SEGMENT = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export interface FileExportResult {
  written: string[];
  removed: string[];
}

/** Writes what changed, removes our directories of certificates no longer exported. */
export function exportCertificatesToFiles(root: string, certs: readonly TlsCertificate[]): FileExportResult {
  const res: FileExportResult = { written: [], removed: [] };
  const wanted = new Set<string>();
  for (const c of certs) {
    const ref = c.exportSecret;
    if (ref === undefined || !SEGMENT.test(ref.namespace) || !SEGMENT.test(ref.name)) continue;
    const dir = path.join(root, ref.namespace, ref.name);
    wanted.add(dir);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(dir, MARKER), `${c.sourceKey}\n`, { mode: 0o600 });
    let changed = false;
    for (const [file, value] of Object.entries(certificateSecretData(c))) {
      const full = path.join(dir, file);
      let prev: string | undefined;
      try {
        prev = fs.readFileSync(full, 'utf8');
      } catch {
        prev = undefined;
      }
      if (prev === value) continue;
      const tmp = `${full}.tmp`;
      fs.writeFileSync(tmp, value, { mode: 0o600 });
      fs.renameSync(tmp, full);
      changed = true;
    }
    if (changed) res.written.push(`${ref.namespace}/${ref.name}`);
  }
  let namespaces: string[] = [];
  try {
    namespaces = fs.readdirSync(root);
  } catch {
    return res;
  }
  for (const ns of namespaces) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(path.join(root, ns));
    } catch {
      continue;
    }
    for (const name of names) {
      const dir = path.join(root, ns, name);
      if (wanted.has(dir) || !fs.existsSync(path.join(dir, MARKER))) continue;
      fs.rmSync(dir, { recursive: true, force: true });
      res.removed.push(`${ns}/${name}`);
    }
  }
  return res;
}
