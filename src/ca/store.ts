// Persistence of the CA material behind one interface: files in the data directory now, a
// Kubernetes Secret later.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';

export interface CaKeyMaterial {
  certPem: string;
  /** PEM private key; the root key may be absent (root kept offline, CA loaded from PEM). */
  keyPem?: string;
}

export interface CaMaterial {
  version: 1;
  root: CaKeyMaterial;
  intermediate: { certPem: string; keyPem: string };
}

export interface CaStore {
  load(): Promise<CaMaterial | undefined>;
  save(m: CaMaterial): Promise<void>;
}

/** In-memory store (tests, ephemeral runs). */
export class MemoryCaStore implements CaStore {
  saved: CaMaterial | undefined;
  saves = 0;
  load(): Promise<CaMaterial | undefined> {
    return Promise.resolve(this.saved);
  }
  save(m: CaMaterial): Promise<void> {
    this.saved = m;
    this.saves++;
    return Promise.resolve();
  }
}

export const CA_FILES = {
  rootCert: 'ca-root.crt.pem',
  rootKey: 'ca-root.key.pem',
  intermediateCert: 'ca-intermediate.crt.pem',
  intermediateKey: 'ca-intermediate.key.pem',
} as const;

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/**
 * PEM files in `dir` (created 0700), each written 0600 through a temp file + fsync + rename.
 * A partial set (some files missing) is an error on load, never a reason to mint a new root.
 */
export class FileCaStore implements CaStore {
  constructor(readonly dir: string) {}

  async load(): Promise<CaMaterial | undefined> {
    const f = (n: string): string => path.join(this.dir, n);
    const [rootCert, rootKey, intCert, intKey] = await Promise.all([
      readIfExists(f(CA_FILES.rootCert)),
      readIfExists(f(CA_FILES.rootKey)),
      readIfExists(f(CA_FILES.intermediateCert)),
      readIfExists(f(CA_FILES.intermediateKey)),
    ]);
    if (rootCert === undefined && rootKey === undefined && intCert === undefined && intKey === undefined)
      return undefined;
    const missing = [
      rootCert === undefined ? CA_FILES.rootCert : undefined,
      intCert === undefined ? CA_FILES.intermediateCert : undefined,
      intKey === undefined ? CA_FILES.intermediateKey : undefined,
    ].filter((x) => x !== undefined);
    if (missing.length > 0 || rootCert === undefined || intCert === undefined || intKey === undefined) {
      throw new Error(`incomplete CA material in ${this.dir}: missing ${missing.join(', ')}`);
    }
    return {
      version: 1,
      root: rootKey === undefined ? { certPem: rootCert } : { certPem: rootCert, keyPem: rootKey },
      intermediate: { certPem: intCert, keyPem: intKey },
    };
  }

  async save(m: CaMaterial): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const files: [string, string][] = [
      [CA_FILES.rootCert, m.root.certPem],
      [CA_FILES.intermediateCert, m.intermediate.certPem],
      [CA_FILES.intermediateKey, m.intermediate.keyPem],
    ];
    if (m.root.keyPem !== undefined) files.push([CA_FILES.rootKey, m.root.keyPem]);
    const tmps: [string, string][] = [];
    try {
      for (const [name, text] of files) {
        const final = path.join(this.dir, name);
        const tmp = `${final}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
        const fh = await fsp.open(tmp, 'wx', 0o600);
        tmps.push([tmp, final]);
        try {
          await fh.writeFile(text, 'utf8');
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
      // Keys first, certificates last: a crash in between leaves a set that fails validation on load.
      tmps.sort((a, b) => Number(b[1].endsWith('.key.pem')) - Number(a[1].endsWith('.key.pem')));
      for (const [tmp, final] of tmps) await fsp.rename(tmp, final);
      tmps.length = 0;
      const dh = await fsp.open(this.dir, 'r');
      try {
        await dh.sync();
      } catch {
        /* directory fsync is best effort */
      } finally {
        await dh.close();
      }
    } finally {
      for (const [tmp] of tmps) await fsp.unlink(tmp).catch(() => undefined);
    }
  }
}
