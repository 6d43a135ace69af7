// File mode's `exportSecret` (Certificates and ApiKeys): the secret's data written as files under
// `<dataDir>/secrets/<namespace>/<name>/` (0600), the way a Kubernetes Secret volume would show
// them. Only directories carrying our marker are ever removed.
import fs from 'node:fs';
import path from 'node:path';

export interface FileSecret {
  namespace: string;
  name: string;
  data: Record<string, string>;
  /** The object it comes from (written in the marker file). */
  owner: string;
  /** Namespace of that object: a secret is only ever written in its owner's namespace. */
  ownerNamespace: string;
}

const MARKER = '.managed-by-otoroshi-xds';
const SEGMENT = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export interface FileExportResult {
  written: string[];
  removed: string[];
  /** `<ns>/<name>: reason` of secrets not written (another namespace, a directory we do not own). */
  refused: string[];
}

/** The owner recorded in a directory's marker; null without a marker, undefined when the directory does not exist. */
function markerOwner(dir: string): string | null | undefined {
  if (!fs.existsSync(dir)) return undefined;
  try {
    return fs.readFileSync(path.join(dir, MARKER), 'utf8').trim();
  } catch {
    return null;
  }
}

/** Writes what changed, removes our directories of secrets no longer exported. */
export function exportSecretsToFiles(root: string, secrets: readonly FileSecret[]): FileExportResult {
  const res: FileExportResult = { written: [], removed: [], refused: [] };
  const wanted = new Set<string>();
  for (const ref of secrets) {
    if (!SEGMENT.test(ref.namespace) || !SEGMENT.test(ref.name)) continue;
    const dir = path.join(root, ref.namespace, ref.name);
    if (wanted.has(dir)) continue;
    if (ref.namespace !== ref.ownerNamespace) {
      res.refused.push(`${ref.namespace}/${ref.name}: in another namespace than ${ref.owner}`);
      continue;
    }
    const owner = markerOwner(dir);
    if (owner === null) {
      res.refused.push(`${ref.namespace}/${ref.name}: the directory exists and was not created by otoroshi-xds`);
      continue;
    }
    if (owner !== undefined && owner !== ref.owner) {
      res.refused.push(`${ref.namespace}/${ref.name}: the directory belongs to ${owner}`);
      continue;
    }
    wanted.add(dir);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(dir, MARKER), `${ref.owner}\n`, { mode: 0o600 });
    let changed = false;
    for (const [file, value] of Object.entries(ref.data)) {
      if (!/^[-._a-zA-Z0-9]+$/.test(file)) continue;
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
