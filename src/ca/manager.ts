// The CA stage of the pipeline: between buildModel (pure) and translate, Certificate CRs with a
// `csr` become certificates. Issued certificates are kept (and persisted) while their csr, issuer
// and validity allow, so a rebuild or a restart does not mint new ones; `autoRenew` renews them
// at two thirds of their lifetime (with jitter), keeping the key pair as Otoroshi does.
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { isWorkloadSpiffeId } from './spiffe.js';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type {
  BuildResult,
  CertificateCsr,
  CertificateRequest,
  ConfigError,
  ObjectStatus,
  TlsCertificate,
} from '../model/types.js';
import {
  CertificateAuthority,
  INTERMEDIATE_CA_ID,
  ROOT_CA_ID,
  keySpecOf,
  spiffeIdFor,
  type IssuedCert,
  type IssuerMaterial,
  type IssueResult,
} from './ca.js';
import { RsaKeyPool } from './keypool.js';
import { splitPemChain } from './export.js';
import { dnEquals } from './x509.js';
import { LEGACY_ROOT_DN } from '../model/cert-refs.js';

/** What is kept per issued certificate (persisted as JSON, 0600). */
export interface IssuedEntry {
  fingerprint: string;
  /** SHA-256 of the issuer's certificate: a new issuer (CA rotated, issuer edited) re-issues. */
  issuerFingerprint: string;
  cert: IssuedCert;
}

export interface IssuedStore {
  get(name: string): IssuedEntry | undefined;
  set(name: string, e: IssuedEntry): void;
  delete(name: string): void;
  names(): string[];
  /** Persists pending changes (no-op for memory). */
  flush(): Promise<void>;
}

export class MemoryIssuedStore implements IssuedStore {
  protected readonly map = new Map<string, IssuedEntry>();
  protected dirty = false;
  get(name: string): IssuedEntry | undefined {
    return this.map.get(name);
  }
  set(name: string, e: IssuedEntry): void {
    this.map.set(name, e);
    this.dirty = true;
  }
  delete(name: string): void {
    if (this.map.delete(name)) this.dirty = true;
  }
  names(): string[] {
    return [...this.map.keys()];
  }
  flush(): Promise<void> {
    this.dirty = false;
    return Promise.resolve();
  }
}

/** One JSON file (`issued-certs.json`, 0600) in the data directory, rewritten through a temp file. */
export class FileIssuedStore extends MemoryIssuedStore {
  private writing: Promise<void> = Promise.resolve();
  constructor(readonly file: string) {
    super();
    try {
      const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as {
        version?: number;
        certs?: Record<string, IssuedEntry>;
      };
      if (raw.version === 1 && raw.certs !== undefined)
        for (const [k, v] of Object.entries(raw.certs)) this.map.set(k, v);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new Error(`cannot read ${file}: ${(e as Error).message.split('\n')[0] ?? ''}`);
    }
  }
  override flush(): Promise<void> {
    if (!this.dirty) return this.writing;
    this.dirty = false;
    const body = JSON.stringify({
      version: 1,
      certs: Object.fromEntries([...this.map].sort(([a], [b]) => (a < b ? -1 : 1))),
    });
    this.writing = this.writing.then(async () => {
      await fsp.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await fsp.writeFile(tmp, body, { mode: 0o600 });
      await fsp.rename(tmp, this.file);
    });
    return this.writing;
  }
}

export type CaEvent =
  | {
      type: 'certificate.issued' | 'certificate.renewed';
      secretName: string;
      serial: string;
      notAfter: string;
      issuer?: string;
    }
  | { type: 'certificate.failed'; secretName: string; message: string };

export interface CertManagerOptions {
  ca: CertificateAuthority;
  store?: IssuedStore;
  now?: () => number;
  rand?: () => number;
  /** Called when an asynchronous issuance (RSA keys) has finished: rebuild to publish it. */
  onAsyncIssued?: () => void;
  onEvent?: (e: CaEvent) => void;
  /** SPIFFE trust domain of workload certificates (default `cluster.local`). */
  trustDomain?: string;
  workloadTtlMs?: number;
  /** At most this many workload certificates are cached (default 10,000); beyond, none is minted. */
  maxWorkloads?: number;
  /**
   * Dry run (`translate`, `validate`): every check of a real issuance, RSA keys replaced by
   * P-256 ones, and the PEM replaced by a placeholder so the output is deterministic.
   */
  dryRun?: boolean;
  /**
   * Synchronous issuance budget of one materialize (ms, default 20): beyond it, certificates
   * are queued and issued in the background in slices of `sliceMs` (default 10), then
   * `onAsyncIssued` is called. CA certificates are always issued inline (others depend on them).
   */
  syncBudgetMs?: number;
  sliceMs?: number;
}

/** A due certificate that could not be renewed is tried again this much later. */
const RENEWAL_RETRY_MS = 60_000;

export const DRY_RUN_PEM = '# issued by otoroshi-xds at runtime';

export interface MaterializeResult {
  /** Epoch ms of the next scheduled renewal (autoRenew certificates), if any. */
  nextRenewalAt?: number;
  issued: number;
  renewed: number;
  reused: number;
}

interface ResolvedIssuer {
  ref: string | IssuerMaterial;
  fingerprint: string;
  label: string;
  /** The issuer's key type: the signature family of what it signs. */
  keyType?: string;
}

/** Key family a csr's `signatureAlg` asks for (`SHA256WithRSAEncryption` → rsa, `SHA256WithECDSA` → ec). */
function requestedSignatureFamily(signatureAlg: string | undefined): 'rsa' | 'ec' | undefined {
  const a = (signatureAlg ?? '').toLowerCase();
  return a.includes('rsa') ? 'rsa' : a.includes('ecdsa') ? 'ec' : undefined;
}

/** A warning when the issuer cannot sign with the family `signatureAlg` asks for. */
function signatureMismatch(req: CertificateRequest, issuer: ResolvedIssuer): ConfigError | undefined {
  const want = requestedSignatureFamily(req.csr.signatureAlg);
  if (want === undefined || issuer.keyType === undefined || issuer.keyType === want) return undefined;
  const got = issuer.keyType === 'ec' ? 'ecdsa-with-SHA…' : `${issuer.keyType.toUpperCase()} (…WithRSAEncryption)`;
  return {
    code: 'OXDS_NOT_SUPPORTED',
    message:
      `signatureAlg ${req.csr.signatureAlg ?? ''} cannot be honoured: the issuer ${issuer.label} has an ` +
      `${issuer.keyType.toUpperCase()} key, so the certificate is signed ${got} (the certificate's own key is still ` +
      `the one csr.key asks for). For an ${want.toUpperCase()} signature, name as csr.issuer a Certificate with ` +
      `ca: true and key.algo: ${want === 'ec' ? 'ecdsa' : 'rsa'}`,
    field: 'spec.csr.signatureAlg',
    severity: 'warning',
  };
}

const FINGERPRINTS = new Map<string, string>();
/** SHA-256 of a PEM certificate's DER (memoised: issuers are looked up once per request). */
const sha256 = (pem: string): string => {
  let fp = FINGERPRINTS.get(pem);
  if (fp !== undefined) return fp;
  try {
    fp = createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
  } catch {
    fp = createHash('sha256').update(pem).digest('hex');
  }
  if (FINGERPRINTS.size > 1024) FINGERPRINTS.clear();
  FINGERPRINTS.set(pem, fp);
  return fp;
};

const KEY_TYPES = new Map<string, string | undefined>();
/** The key type (`ec`, `rsa`) of a PEM certificate (memoised like the fingerprints). */
type Problem = (req: CertificateRequest, e: ConfigError) => void;

/** What one materialize pass shares between its steps. */
interface IssuePass {
  model: BuildResult['model'];
  issuers: IssuerMaterial[];
  now: number;
  result: MaterializeResult;
  problem: Problem;
}

/** Reports a certificate problem on the status of the CR that asked for it (an error makes it invalid). */
function problemReporter(statuses: readonly ObjectStatus[]): Problem {
  const statusByKey = new Map<string, ObjectStatus>(statuses.map((s) => [s.key, s]));
  return (req, e) => {
    const st = statusByKey.get(req.sourceKey);
    if (st === undefined) return;
    st.errors.push({
      ...e,
      kind: st.kind,
      namespace: st.namespace,
      name: st.name,
      ...(st.origin.file === undefined ? {} : { file: st.origin.file }),
      ...(st.origin.doc === undefined ? {} : { doc: st.origin.doc }),
    });
    if (e.severity === 'error') st.state = 'invalid';
  };
}

/** A CA certificate as issuer material, under its id (when it has one) and its secret name; nothing otherwise. */
function issuerMaterialOf(t: TlsCertificate): IssuerMaterial[] {
  if (t.ca !== true) return [];
  const m: IssuerMaterial = {
    certPem: splitPemChain(t.certificateChain)[0] ?? '',
    keyPem: t.privateKey,
    chainPem: t.certificateChain,
  };
  return [...(t.id !== undefined ? [{ ...m, id: t.id }] : []), { ...m, id: t.secretName }];
}

/** A kept certificate past its notAfter (no autoRenew): still served, with a warning. */
function expiredWarning(notAfter: number): ConfigError {
  return {
    code: 'OXDS_INVALID_FIELD',
    message: `certificate expired on ${new Date(notAfter).toISOString()} (set autoRenew: true to have it renewed)`,
    field: 'spec.autoRenew',
    severity: 'warning',
  };
}

/** The unknown-issuer message, with a hint when the name is the root DN Otoroshi used before 1.5. */
function unknownIssuerMessage(issuer: string): string {
  const legacy = dnEquals(issuer, LEGACY_ROOT_DN)
    ? `; ${LEGACY_ROOT_DN} is the root DN of Otoroshi before 1.5: did you mean ${ROOT_CA_ID}?`
    : '';
  return (
    `unknown issuer "${issuer}": no CA certificate with that id, name or subject DN ` +
    `(${ROOT_CA_ID}, ${INTERMEDIATE_CA_ID}, or a Certificate with ca: true)${legacy}`
  );
}

function keyTypeOf(pem: string): string | undefined {
  if (KEY_TYPES.has(pem)) return KEY_TYPES.get(pem);
  let t: string | undefined;
  try {
    t = new X509Certificate(pem).publicKey.asymmetricKeyType;
  } catch {
    t = undefined;
  }
  if (KEY_TYPES.size > 1024) KEY_TYPES.clear();
  KEY_TYPES.set(pem, t);
  return t;
}

/** The DNS SANs of an issued certificate (what SNI matching and the model use). */
function dnsNamesOf(c: IssuedCert): string[] {
  const dns = c.sans.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4));
  if (dns.length > 0) return dns;
  const cn = /(?:^|,\s*)CN=([^,]+)/.exec(c.subject);
  return cn?.[1] !== undefined ? [cn[1].trim()] : [];
}

export function tlsCertificateOf(req: CertificateRequest, c: IssuedCert): TlsCertificate {
  const t: TlsCertificate = {
    secretName: req.secretName,
    sourceKey: req.sourceKey,
    certificateChain: c.chainPem,
    privateKey: c.keyPem,
    dnsNames: dnsNamesOf(c),
    notBefore: new Date(c.notBefore).toISOString(),
    notAfter: new Date(c.notAfter).toISOString(),
    id: req.id,
    ca: c.ca,
    subject: c.subject,
  };
  if (req.exportSecret !== undefined) t.exportSecret = req.exportSecret;
  return t;
}

export class CertManager {
  readonly ca: CertificateAuthority;
  readonly store: IssuedStore;
  private readonly now: () => number;
  private readonly rand: () => number;
  private readonly pending = new Map<string, string>(); // secretName → fingerprint being issued async
  private readonly queue = new Map<
    string,
    {
      req: CertificateRequest;
      issuer: ResolvedIssuer;
      csr: CertificateCsr;
      opts: Parameters<CertificateAuthority['issueSync']>[1];
      renewing: boolean;
    }
  >();
  private draining = false;
  /** Queued issuances that failed: issued inline next time so the CR gets its status error. */
  private readonly failed = new Map<string, string>();
  private deadline = Number.POSITIVE_INFINITY;
  private readonly workloads = new Map<string, IssuedCert>();
  /** Workload identities whose certificate was due at the last rebuild (their next one is a renewal). */
  private readonly renewing = new Set<string>();
  readonly trustDomain: string;
  private readonly maxWorkloads: number;

  constructor(private readonly opts: CertManagerOptions) {
    this.ca = opts.ca;
    this.store = opts.store ?? new MemoryIssuedStore();
    this.now = opts.now ?? Date.now;
    this.rand = opts.rand ?? Math.random;
    this.trustDomain = opts.trustDomain ?? 'cluster.local';
    this.maxWorkloads = opts.maxWorkloads ?? 10_000;
  }

  /**
   * Issues (or reuses) the certificates of `built.model.certificateRequests`, adds them to
   * `built.model.certificates`, sets the CA bundle, and reports problems on the CRs' statuses.
   * Synchronous except RSA keys not yet in the pool: those finish in the background and call
   * `onAsyncIssued`.
   */
  materialize(built: BuildResult): MaterializeResult {
    const model = built.model;
    model.caBundle = this.opts.dryRun === true ? `${DRY_RUN_PEM} (the CA trust bundle)` : this.ca.trustBundlePem;
    const reqs = model.certificateRequests ?? [];
    const now = this.now();
    const result: MaterializeResult = { issued: 0, renewed: 0, reused: 0 };
    this.deadline = performance.now() + (this.opts.syncBudgetMs ?? 20);
    const problem = problemReporter(built.statuses);
    // CA certificates (provided, or issued in this pass) can sign other requests.
    const issuers: IssuerMaterial[] = model.certificates.flatMap(issuerMaterialOf);
    const unresolved = this.issueInOrder(reqs, { model, issuers, now, result, problem });
    for (const [req, e] of unresolved) {
      problem(req, e);
      this.opts.onEvent?.({ type: 'certificate.failed', secretName: req.secretName, message: e.message });
    }
    model.certificates.sort((a, b) => (a.secretName < b.secretName ? -1 : a.secretName > b.secretName ? 1 : 0));
    // Forget certificates whose CR is gone.
    const live = new Set(reqs.map((r) => r.secretName));
    for (const n of this.store.names()) if (!live.has(n)) this.store.delete(n);
    result.nextRenewalAt = this.nextRenewal(reqs, now);
    void this.store.flush().catch(() => undefined);
    return result;
  }

  /**
   * Issues the requests whose issuer is known, pass after pass (a CA issued in one pass signs in the next), until no
   * pass makes progress; returns the requests left with an unknown issuer.
   */
  private issueInOrder(reqs: readonly CertificateRequest[], pass: IssuePass): Map<CertificateRequest, ConfigError> {
    const { model, issuers, now, result, problem } = pass;
    let pending = [...reqs];
    let progress = true;
    const unresolved = new Map<CertificateRequest, ConfigError>();
    const declaredKeyType = new Map<string, string>();
    while (pending.length > 0 && progress) {
      progress = false;
      const next: CertificateRequest[] = [];
      for (const req of pending) {
        const issuer = this.resolveIssuer(req.csr.issuer, issuers);
        if (issuer === undefined) {
          next.push(req);
          unresolved.set(req, {
            code: 'OXDS_UNRESOLVED_REFERENCE',
            message: unknownIssuerMessage(req.csr.issuer ?? ''),
            field: 'spec.csr.issuer',
            severity: 'error',
          });
          continue;
        }
        progress = true;
        unresolved.delete(req);
        const declared =
          typeof issuer.ref !== 'string' && issuer.ref.id !== undefined
            ? declaredKeyType.get(issuer.ref.id)
            : undefined;
        const mismatch = signatureMismatch(req, declared !== undefined ? { ...issuer, keyType: declared } : issuer);
        if (mismatch !== undefined) problem(req, mismatch);
        const t = this.certificateFor(req, issuer, now, result, problem);
        if (t !== undefined) {
          model.certificates.push(t);
          if (this.opts.dryRun === true && t.ca === true) {
            // a dry run issues EC placeholders: what the CA will sign with is the key its csr asks for
            const algo = keySpecOf(req.csr as CertificateCsr).algo === 'rsa' ? 'rsa' : 'ec';
            for (const id of [t.secretName, t.id]) if (id !== undefined) declaredKeyType.set(id, algo);
          }
          issuers.push(...issuerMaterialOf(this.dryRunIssuers.get(t.secretName) ?? t));
        }
      }
      pending = next;
    }
    return unresolved;
  }

  /**
   * When the next rebuild must run for a renewal: the earliest future renewAt of the autoRenew
   * certificates and of the workload certificates. Certificates being issued in the background
   * are left out (their completion asks for a rebuild); a due one that could not be renewed is
   * retried a minute later, never in a tight loop. Workload certificates that are due are
   * forgotten here: a node still subscribed gets a new one when the next snapshot resolves it.
   */
  private nextRenewal(reqs: readonly CertificateRequest[], now: number): number | undefined {
    let next: number | undefined;
    const consider = (t: number): void => {
      if (next === undefined || t < next) next = t;
    };
    for (const req of reqs) {
      if (!req.autoRenew || this.queue.has(req.secretName) || this.pending.has(req.secretName)) continue;
      const e = this.store.get(req.secretName);
      if (e === undefined || e.fingerprint !== req.fingerprint) continue;
      consider(e.cert.renewAt > now ? e.cert.renewAt : now + RENEWAL_RETRY_MS);
    }
    this.renewing.clear();
    for (const [id, c] of this.workloads) {
      if (c.renewAt > now) consider(c.renewAt);
      else {
        this.workloads.delete(id);
        this.renewing.add(id);
      }
    }
    return next;
  }

  /** Issuer reference → our CA (by id or DN), or a CA certificate of the model (by id, `<ns>/<name>` or DN). */
  private resolveIssuer(ref: string | undefined, issuers: readonly IssuerMaterial[]): ResolvedIssuer | undefined {
    const found = this.ca.findIssuer(ref, issuers);
    if (found === undefined) return undefined;
    const keyType = keyTypeOf(found.certPem);
    return {
      ref: found.ref,
      fingerprint: sha256(found.certPem),
      label: typeof found.ref === 'string' ? found.ref : (found.ref.id ?? ref ?? ''),
      ...(keyType !== undefined ? { keyType } : {}),
    };
  }

  private certificateFor(
    req: CertificateRequest,
    issuer: ResolvedIssuer,
    now: number,
    result: MaterializeResult,
    problem: (req: CertificateRequest, e: ConfigError) => void,
  ): TlsCertificate | undefined {
    const prev = this.store.get(req.secretName);
    const sameRequest =
      prev !== undefined && prev.fingerprint === req.fingerprint && prev.issuerFingerprint === issuer.fingerprint;
    if (sameRequest && prev !== undefined) {
      const due = req.autoRenew ? now >= prev.cert.renewAt : false;
      if (!due) {
        if (now >= prev.cert.notAfter) problem(req, expiredWarning(prev.cert.notAfter));
        result.reused++;
        return tlsCertificateOf(req, prev.cert);
      }
    }
    const renewing = sameRequest && prev !== undefined;
    const csr = req.csr as CertificateCsr;
    const opts: Parameters<CertificateAuthority['issueSync']>[1] = { now, issuer: issuer.ref, rand: this.rand };
    if (renewing && prev !== undefined) {
      try {
        opts.key = createPrivateKey(prev.cert.keyPem); // Otoroshi's Cert.renew keeps the key pair
      } catch {
        // a broken stored key: issue with a new one
      }
    }
    const k = keySpecOf(csr);
    if (this.opts.dryRun === true && k.algo === 'rsa') return this.dryRunRsa(req, k.size, opts, problem);
    const inline = csr.ca === true || this.opts.dryRun === true || this.failed.get(req.secretName) === req.fingerprint;
    if (!inline && (this.queue.has(req.secretName) || performance.now() > this.deadline)) {
      this.queue.set(req.secretName, { req, issuer, csr, opts, renewing });
      this.scheduleDrain();
      problem(req, {
        code: 'OXDS_INVALID_FIELD',
        message: `issuing: queued behind ${this.queue.size - 1} other certificate(s)`,
        field: 'spec.csr',
        severity: 'warning',
      });
      return prev !== undefined && now < prev.cert.notAfter ? tlsCertificateOf(req, prev.cert) : undefined;
    }
    if (opts.key === undefined && k.algo === 'rsa' && this.ca.pool.available(k.size) === 0) {
      this.issueAsync(req, issuer, csr, opts);
      problem(req, {
        code: 'OXDS_INVALID_FIELD',
        message: `issuing: waiting for an RSA-${k.size} key (generated off the event loop)`,
        field: 'spec.csr.key',
        severity: 'warning',
      });
      return prev !== undefined && now < prev.cert.notAfter ? tlsCertificateOf(req, prev.cert) : undefined;
    }
    const r: IssueResult = this.ca.issueSync(csr, opts);
    if (!r.ok) {
      problem(req, r.error);
      this.opts.onEvent?.({ type: 'certificate.failed', secretName: req.secretName, message: r.error.message });
      return undefined;
    }
    if (this.opts.dryRun === true) return this.placeholder(tlsCertificateOf(req, r.cert));
    this.store.set(req.secretName, {
      fingerprint: req.fingerprint,
      issuerFingerprint: issuer.fingerprint,
      cert: r.cert,
    });
    if (renewing) result.renewed++;
    else result.issued++;
    this.emitIssued(renewing, req.secretName, r.cert, issuer.label);
    return tlsCertificateOf(req, r.cert);
  }

  /** Dry run of an RSA csr: the size checked, an ECDSA placeholder issued (RSA keys are slow to generate). */
  private dryRunRsa(
    req: CertificateRequest,
    size: number,
    opts: Parameters<CertificateAuthority['issueSync']>[1],
    problem: Problem,
  ): TlsCertificate | undefined {
    if (!RsaKeyPool.isSupportedSize(size)) {
      problem(req, {
        code: 'OXDS_INVALID_FIELD',
        message: `unsupported RSA key size ${size} (2048, 3072 or 4096)`,
        field: 'spec.csr.key.size',
        severity: 'error',
      });
      return undefined;
    }
    const csr = req.csr as CertificateCsr;
    const r = this.ca.issueSync(
      { ...csr, key: { algo: 'ecdsa', size: 256 }, keyType: undefined, keySize: undefined } as CertificateCsr,
      opts,
    );
    if (!r.ok) {
      problem(req, r.error);
      return undefined;
    }
    return this.placeholder(tlsCertificateOf(req, r.cert));
  }

  /** Dry run: the facts of the certificate, a placeholder instead of its PEM (keeps CA-issued children issuable). */
  private placeholder(t: TlsCertificate): TlsCertificate {
    const out = {
      ...t,
      certificateChain: `${DRY_RUN_PEM} (Certificate ${t.secretName})`,
      privateKey: `${DRY_RUN_PEM} (Certificate ${t.secretName})`,
    };
    delete out.notBefore;
    delete out.notAfter;
    if (t.ca === true) this.dryRunIssuers.set(t.secretName, t);
    return out;
  }

  private readonly dryRunIssuers = new Map<string, TlsCertificate>();

  private emitIssued(renewed: boolean, secretName: string, c: IssuedCert, issuer: string): void {
    this.opts.onEvent?.({
      type: renewed ? 'certificate.renewed' : 'certificate.issued',
      secretName,
      serial: c.serialHex,
      notAfter: new Date(c.notAfter).toISOString(),
      issuer,
    });
  }

  /** Issues queued certificates in slices (setImmediate between them), then asks for a rebuild. */
  private scheduleDrain(): void {
    if (this.draining) return;
    this.draining = true;
    const slice = (): void => {
      const end = performance.now() + (this.opts.sliceMs ?? 10);
      for (const [name, job] of this.queue) {
        if (performance.now() > end) break;
        this.queue.delete(name);
        const k = keySpecOf(job.csr);
        if (job.opts.key === undefined && k.algo === 'rsa' && this.ca.pool.available(k.size) === 0) {
          this.issueAsync(job.req, job.issuer, job.csr, job.opts);
          continue;
        }
        const r = this.ca.issueSync(job.csr, job.opts);
        if (!r.ok) {
          this.failed.set(name, job.req.fingerprint);
          continue;
        }
        this.store.set(name, {
          fingerprint: job.req.fingerprint,
          issuerFingerprint: job.issuer.fingerprint,
          cert: r.cert,
        });
        this.emitIssued(job.renewing, name, r.cert, job.issuer.label);
      }
      if (this.queue.size > 0) {
        setImmediate(slice);
        return;
      }
      this.draining = false;
      void this.store.flush().catch(() => undefined);
      this.opts.onAsyncIssued?.();
    };
    setImmediate(slice);
  }

  /** Certificates waiting in the background queue. */
  get queued(): number {
    return this.queue.size;
  }

  private issueAsync(
    req: CertificateRequest,
    issuer: ResolvedIssuer,
    csr: CertificateCsr,
    opts: Parameters<CertificateAuthority['issue']>[1],
  ): void {
    if (this.pending.get(req.secretName) === req.fingerprint) return;
    this.pending.set(req.secretName, req.fingerprint);
    void this.ca
      .issue(csr, opts)
      .then((r) => {
        if (this.pending.get(req.secretName) !== req.fingerprint) return; // superseded
        this.pending.delete(req.secretName);
        if (!r.ok) {
          this.opts.onEvent?.({ type: 'certificate.failed', secretName: req.secretName, message: r.error.message });
          return;
        }
        this.store.set(req.secretName, {
          fingerprint: req.fingerprint,
          issuerFingerprint: issuer.fingerprint,
          cert: r.cert,
        });
        this.emitIssued(false, req.secretName, r.cert, issuer.label);
        this.opts.onAsyncIssued?.();
      })
      .catch(() => this.pending.delete(req.secretName));
  }

  // ------------------------------------------------------------------ workload identities

  /**
   * Drops the cached workload certificates of identities no stream holds any more (a new key is minted if one comes
   * back).
   */
  retainWorkloads(held: ReadonlySet<string>): number {
    let n = 0;
    for (const id of [...this.workloads.keys()]) {
      if (held.has(id)) continue;
      this.workloads.delete(id);
      n++;
    }
    return n;
  }

  /** Workload certificates currently cached. */
  get workloadCount(): number {
    return this.workloads.size;
  }

  /** The SPIFFE id a sidecar node may ask for: from node metadata (NAMESPACE / SERVICE_ACCOUNT). */
  spiffeIdOf(namespace: string, serviceAccount: string): string {
    return spiffeIdFor(this.trustDomain, namespace, serviceAccount);
  }

  /**
   * The workload certificate of a SPIFFE id (24 h by default), reused until its renewal time; a
   * renewal mints a new key pair. Undefined when the id is not one of our trust domain.
   */
  workload(spiffeId: string): IssuedCert | undefined {
    const now = this.now();
    const hit = this.workloads.get(spiffeId);
    if (hit !== undefined && now < hit.renewAt) return hit;
    const renewed = hit !== undefined || this.renewing.delete(spiffeId);
    if (!isWorkloadSpiffeId(spiffeId, this.trustDomain)) return undefined;
    if (hit === undefined && this.workloads.size >= this.maxWorkloads) {
      this.opts.onEvent?.({
        type: 'certificate.failed',
        secretName: spiffeId,
        message: `workload certificate cache full (${this.maxWorkloads})`,
      });
      return undefined;
    }
    const r = this.ca.workload(spiffeId, {
      now,
      rand: this.rand,
      ...(this.opts.workloadTtlMs === undefined ? {} : { ttlMs: this.opts.workloadTtlMs }),
    });
    if (!r.ok) return undefined;
    this.workloads.set(spiffeId, r.cert);
    this.emitIssued(renewed, spiffeId, r.cert, INTERMEDIATE_CA_ID);
    return r.cert;
  }
}
