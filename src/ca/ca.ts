// The mesh certificate authority: a root and an intermediate (which signs leaves), persisted
// behind CaStore, issuing what a Certificate csr asks for (docs/decisions.md: "Issuers, keys and renewal").
// Private keys live in ECMAScript private fields: they are not enumerable, not serialised by
// JSON.stringify and not printed by util.inspect; no error message carries key material.
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { parseSpiffeId } from './spiffe.js';
import { inspect } from 'node:util';
import type { CertificateCsr, ConfigError } from '../model/types.js';
import * as der from './der.js';
import { RsaKeyPool, generateEcKey, generateEcKeyPair, spkiOf } from './keypool.js';
import { renewAt } from './renewal.js';
import type { CaMaterial, CaStore } from './store.js';
import {
  buildCertificate,
  certBasics,
  decodeName,
  dnEquals,
  encodeName,
  formatDn,
  hashFromAlgName,
  keyIdentifier,
  makeSigner,
  parseDn,
  sanOf,
  withHash,
  type DnAttribute,
  type Signer,
  type SubjectAltName,
} from './x509.js';

export const ROOT_CA_ID = 'otoroshi-root-ca';
export const INTERMEDIATE_CA_ID = 'otoroshi-intermediate-ca';
export const ROOT_CA_DN = 'CN=Otoroshi Default Root CA Certificate, OU=Otoroshi Certificates, O=Otoroshi';
export const INTERMEDIATE_CA_DN =
  'CN=Otoroshi Default Intermediate CA Certificate, OU=Otoroshi Certificates, O=Otoroshi';

const DAY = 24 * 3600 * 1000;
export const CA_VALIDITY_MS = 3650 * DAY;
/** Default csr duration (Otoroshi: 365 days). */
export const DEFAULT_DURATION_MS = 365 * DAY;
/** Default workload (sidecar) certificate lifetime. */
export const WORKLOAD_DURATION_MS = DAY;
/** CA certificates are back-dated this much to tolerate clock skew between nodes. */
const CA_BACKDATE_MS = 3600 * 1000;

// ---------------------------------------------------------------- csr

/** A CA other than ours, able to sign: a Certificate with `ca: true` (e.g. an IssuedCert). */
export interface IssuerMaterial {
  id?: string;
  certPem: string;
  keyPem: string;
  /** The issuer's chain starting with its own certificate (Otoroshi's `chain`); default `certPem`. */
  chainPem?: string;
}

/** An issuer id / subject DN, or the issuer's material itself. */
export type IssuerRef = string | IssuerMaterial;

export interface IssueOptions {
  /** Epoch ms: notBefore; notAfter = now + duration. */
  now: number;
  /** Undefined → `csr.issuer` → our intermediate. */
  issuer?: IssuerRef;
  /** Other CA certificates a string issuer may name (by id or subject DN). */
  issuers?: readonly IssuerMaterial[] | ((ref: string) => IssuerMaterial | undefined);
  /** Reuse this private key (renewal keeps the key pair, as Otoroshi's `Cert.renew`). */
  key?: KeyObject;
  /** Reuse a serial (big-endian magnitude bytes). */
  serial?: Buffer;
  /** Renewal jitter as a fraction of the lifetime (default 0.1). */
  jitter?: number;
  rand?: () => number;
  /** Field path prefix for errors (default `spec.csr`). */
  field?: string;
}

export interface IssuedCert {
  /** The certificate alone. */
  certPem: string;
  /** PKCS#8 PEM private key of the certificate. */
  keyPem: string;
  /** leaf + issuer + issuer's chain (as Otoroshi serves it: leaf, intermediate, root). */
  chainPem: string;
  notBefore: number;
  notAfter: number;
  serialHex: string;
  /** Scheduled renewal time (two thirds of the lifetime ± jitter). */
  renewAt: number;
  subject: string;
  /** `DNS:x`, `URI:spiffe://...`, `IP:1.2.3.4`. */
  sans: string[];
  /** Id of the issuer when known (ours or the material's id). */
  issuerId?: string;
  ca: boolean;
}

export type IssueResult = { ok: true; cert: IssuedCert } | { ok: false; error: ConfigError };

const DURATION_UNITS: Record<string, number> = {};
for (const [names, ms] of [
  [['ms', 'milli', 'millis', 'millisecond', 'milliseconds'], 1],
  [['s', 'sec', 'secs', 'second', 'seconds'], 1000],
  [['m', 'min', 'mins', 'minute', 'minutes'], 60_000],
  [['h', 'hr', 'hrs', 'hour', 'hours'], 3_600_000],
  [['d', 'day', 'days'], DAY],
  [['w', 'week', 'weeks'], 7 * DAY],
  [['y', 'year', 'years'], 365 * DAY],
] as const) {
  for (const n of names) DURATION_UNITS[n] = ms;
}

/** `30 days`, `24h`, `1 hour`, `90m`, `10s`, `500ms`, `2w`, `1y`, a plain number (ms). */
export function parseDurationMs(v: number | string): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? Math.floor(v) : undefined;
  const s = v.trim().toLowerCase();
  if (/^\d+$/.test(s)) return parseDurationMs(Number(s));
  let total = 0;
  const re = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*/y;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(s)) !== null) {
    const unit = DURATION_UNITS[m[2] ?? ''];
    if (unit === undefined) return undefined;
    total += Number(m[1]) * unit;
    consumed = re.lastIndex;
  }
  if (consumed !== s.length || total <= 0) return undefined;
  return Math.floor(total);
}

/** `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`. */
export function spiffeIdFor(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

function err(code: ConfigError['code'], message: string, field: string): Failed {
  return { ok: false, error: { code, message, field, severity: 'error' } };
}

type Failed = Extract<IssueResult, { ok: false }>;

function failed(x: object): x is Failed {
  return 'ok' in x && x.ok === false;
}

/** notBefore / notAfter of a csr, whole seconds (default duration when it names none). */
function validityOf(req: CertificateCsr, now: number, field: string): { notBefore: number; notAfter: number } | Failed {
  let duration = DEFAULT_DURATION_MS;
  if (req.duration !== undefined) {
    const d = parseDurationMs(req.duration);
    if (d === undefined)
      return err('OXDS_INVALID_FIELD', `invalid duration ${JSON.stringify(req.duration)}`, `${field}.duration`);
    duration = d;
  }
  return { notBefore: Math.floor(now / 1000) * 1000, notAfter: Math.floor((now + duration) / 1000) * 1000 };
}

/** The subject alternative names of a csr's hosts (printable ASCII only). */
function sansOf(req: CertificateCsr, field: string): SubjectAltName[] | Failed {
  const sans: SubjectAltName[] = [];
  for (const [i, h] of (req.hosts ?? []).entries()) {
    const s = sanOf(h);
    if (s.value === '' || !/^[\x21-\x7e]+$/.test(s.value))
      return err(
        'OXDS_INVALID_FIELD',
        `invalid host ${JSON.stringify(h)} (ASCII only; use punycode for IDNs)`,
        `${field}.hosts[${i}]`,
      );
    sans.push(s);
  }
  return sans;
}

/** The subject DN: `subject`, else `name`, else CN = the first DNS SAN; a CA needs one. */
function subjectOf(req: CertificateCsr, sans: readonly SubjectAltName[], field: string): DnAttribute[] | Failed {
  let attrs: DnAttribute[];
  try {
    if (req.subject !== undefined && req.subject.trim() !== '') attrs = parseDn(req.subject);
    else if (req.name !== undefined && Object.keys(req.name).length > 0)
      attrs = parseDn(
        Object.entries(req.name)
          .map(([k, v]) => `${k}=${v.replace(/,/g, '\\,')}`)
          .join(','),
      );
    else {
      const dns = sans.find((s) => s.kind === 'dns');
      attrs = dns === undefined ? [] : [{ type: 'CN', value: dns.value }];
    }
  } catch (e) {
    return err(
      'OXDS_INVALID_FIELD',
      `invalid subject: ${(e as Error).message}`,
      `${field}.${req.subject !== undefined ? 'subject' : 'name'}`,
    );
  }
  const ca = req.ca === true;
  if (attrs.length === 0 && (sans.length === 0 || ca))
    return err(
      'OXDS_MISSING_FIELD',
      ca ? 'a CA certificate needs a subject' : 'csr needs a subject, a name or at least one host',
      field,
    );
  return attrs;
}

/** The certificate's key: the one given, a fresh ECDSA pair, or a ready pooled RSA key. */
function keyPairOf(
  req: CertificateCsr,
  given: KeyObject | undefined,
  pool: RsaKeyPool,
  field: string,
): { spki: Buffer; keyPem: string } | Failed {
  let key = given;
  if (key === undefined) {
    const k = keySpecOf(req);
    if (k.algo === 'ecdsa') {
      const pair = generateEcKeyPair(k.size);
      return { spki: pair.spki, keyPem: der.toPem(pair.pkcs8, 'PRIVATE KEY') };
    }
    if (k.algo !== 'rsa')
      return err(
        'OXDS_INVALID_FIELD',
        `unsupported key algorithm ${JSON.stringify(k.algo)} (rsa or ecdsa)`,
        `${field}.key.algo`,
      );
    if (!RsaKeyPool.isSupportedSize(k.size))
      return err('OXDS_INVALID_FIELD', `unsupported RSA key size ${k.size} (2048, 3072 or 4096)`, `${field}.key.size`);
    key = pool.takeSync(k.size);
    if (key === undefined)
      return err('OXDS_INVALID_FIELD', `no RSA-${k.size} key ready (use the async issue())`, `${field}.key`);
  }
  try {
    return { spki: spkiOf(key), keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string };
  } catch {
    return err('OXDS_INVALID_FIELD', 'the provided key cannot be exported (not a private key?)', `${field}.key`);
  }
}

/** `DNS:a.example`, `URI:spiffe://…`, `IP:10.0.0.1`, `email:…`. */
function sanLabel(s: SubjectAltName): string {
  return `${s.kind === 'dns' ? 'DNS' : s.kind === 'uri' ? 'URI' : s.kind === 'ip' ? 'IP' : 'email'}:${s.value}`;
}

// ---------------------------------------------------------------- issuer contexts

interface IssuerCtx {
  id: string | undefined;
  signer: Signer;
  dn: string;
  certPem: string;
  chainPem: string;
  notAfter: number;
}

function safePrivateKey(pem: string, what: string): KeyObject {
  try {
    const k = createPrivateKey(pem);
    if (k.type !== 'private') throw new Error();
    return k;
  } catch {
    throw new Error(`${what}: not a valid PEM private key`);
  }
}

function parseCert(pem: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new Error(`${what}: not a valid PEM certificate`);
  }
}

function pemCerts(pem: string): string[] {
  return der.fromPem(pem, 'CERTIFICATE').map((d) => der.toPem(d, 'CERTIFICATE'));
}

/** Compiles an issuer (cert + key) into a Signer; throws (without key material) when unusable. */
function compileIssuer(
  id: string | undefined,
  certPem: string,
  key: KeyObject,
  chainPem: string | undefined,
  what: string,
): IssuerCtx {
  const first = pemCerts(certPem)[0];
  if (first === undefined) throw new Error(`${what}: no PEM certificate`);
  const x = parseCert(first, what);
  if (!x.ca) throw new Error(`${what}: not a CA certificate (basicConstraints CA:false)`);
  if (!x.checkPrivateKey(key)) throw new Error(`${what}: the private key does not match the certificate`);
  const basics = certBasics(x.raw);
  const signer = makeSigner(basics.subjectName, basics.keyId, key);
  let chain = chainPem ?? first;
  if (!chain.endsWith('\n')) chain += '\n';
  return {
    id,
    signer,
    dn: formatDn(decodeName(basics.subjectName)),
    certPem: first,
    chainPem: chain,
    notAfter: Date.parse(x.validTo),
  };
}

const EXTERNAL_CACHE_MAX = 256;

// ---------------------------------------------------------------- the CA

export interface CaOptions {
  pool?: RsaKeyPool;
}

export class CertificateAuthority {
  readonly rootCertPem: string;
  readonly intermediateCertPem: string;
  /** The trust bundle (`otoroshi-ca-bundle`): the root certificate. */
  readonly trustBundlePem: string;
  /** SHA-256 fingerprint of the root certificate (hex, lower case). */
  readonly rootFingerprint: string;
  readonly pool: RsaKeyPool;
  readonly #root: IssuerCtx | undefined;
  readonly #intermediate: IssuerCtx;
  readonly #rootKeyPem: string | undefined;
  readonly #intermediateKeyPem: string;
  readonly #external = new Map<string, IssuerCtx>();

  private constructor(
    rootCertPem: string,
    rootKeyPem: string | undefined,
    intermediateCertPem: string,
    intermediateKeyPem: string,
    opts: CaOptions,
  ) {
    const rootPem = pemCerts(rootCertPem)[0];
    if (rootPem === undefined) throw new Error('root CA: no PEM certificate');
    const rootX = parseCert(rootPem, 'root CA');
    if (!rootX.ca) throw new Error('root CA: not a CA certificate');
    const intCerts = pemCerts(intermediateCertPem);
    const intPem = intCerts[0];
    if (intPem === undefined) throw new Error('intermediate CA: no PEM certificate');
    // intermediate (and any further intermediates given after it) must chain up to the root.
    const xs = [...intCerts.map((p) => parseCert(p, 'intermediate CA')), rootX];
    for (let i = 0; i + 1 < xs.length; i++) {
      const child = xs[i] as X509Certificate;
      const parent = xs[i + 1] as X509Certificate;
      if (!child.checkIssued(parent) || !child.verify(parent.publicKey))
        throw new Error('intermediate CA: not issued by the root CA');
    }
    const intKey = safePrivateKey(intermediateKeyPem, 'intermediate CA key');
    this.rootCertPem = rootPem;
    this.intermediateCertPem = intPem;
    this.trustBundlePem = rootPem;
    this.rootFingerprint = createHash('sha256').update(rootX.raw).digest('hex');
    this.#rootKeyPem = rootKeyPem;
    this.#intermediateKeyPem = intermediateKeyPem;
    this.#root =
      rootKeyPem === undefined
        ? undefined
        : compileIssuer(ROOT_CA_ID, rootPem, safePrivateKey(rootKeyPem, 'root CA key'), rootPem, 'root CA');
    this.#intermediate = compileIssuer(
      INTERMEDIATE_CA_ID,
      intPem,
      intKey,
      intCerts.join('') + rootPem,
      'intermediate CA',
    );
    this.pool = opts.pool ?? new RsaKeyPool();
  }

  /** A new root + intermediate (ECDSA P-256, 10 years, back-dated 1 h). */
  static create(opts: CaOptions & { now?: number } = {}): CertificateAuthority {
    const now = opts.now ?? Date.now();
    const nb = now - CA_BACKDATE_MS;
    const rootKey = generateEcKey(256);
    const rootSpki = spkiOf(rootKey);
    const rootName = encodeName(parseDn(ROOT_CA_DN));
    // Self-signed: the signer's key id is the root's own SKI.
    const rootSigner = makeSigner(rootName, keyIdentifier(rootSpki), rootKey);
    const root = buildCertificate(
      { subject: rootName, spki: rootSpki, notBefore: nb, notAfter: nb + CA_VALIDITY_MS, ca: true },
      rootSigner,
    );
    const intKey = generateEcKey(256);
    const intSpki = spkiOf(intKey);
    const int = buildCertificate(
      {
        subject: encodeName(parseDn(INTERMEDIATE_CA_DN)),
        spki: intSpki,
        notBefore: nb,
        notAfter: nb + CA_VALIDITY_MS,
        ca: true,
      },
      rootSigner,
    );
    return new CertificateAuthority(
      der.toPem(root.der, 'CERTIFICATE'),
      rootKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      der.toPem(int.der, 'CERTIFICATE'),
      intKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      opts,
    );
  }

  /** From stored material (validated: chain, key/cert match). */
  static fromMaterial(m: CaMaterial, opts: CaOptions = {}): CertificateAuthority {
    return new CertificateAuthority(m.root.certPem, m.root.keyPem, m.intermediate.certPem, m.intermediate.keyPem, opts);
  }

  /**
   * From user-provided PEM. The root key is optional (without it the root cannot be named as an
   * issuer). `intermediateCert` may hold further intermediates after the signing one.
   */
  static fromPem(
    rootCert: string,
    intermediateCert: string,
    intermediateKey: string,
    opts: CaOptions & { rootKey?: string } = {},
  ): CertificateAuthority {
    return new CertificateAuthority(rootCert, opts.rootKey, intermediateCert, intermediateKey, opts);
  }

  /** Loads the CA from the store, or creates and saves a new one. */
  static async loadOrCreate(store: CaStore, opts: CaOptions & { now?: number } = {}): Promise<CertificateAuthority> {
    const m = await store.load();
    if (m !== undefined) return CertificateAuthority.fromMaterial(m, opts);
    const ca = CertificateAuthority.create(opts);
    try {
      await store.save(ca.material());
    } catch (e) {
      // Another replica saved its CA first: use that one.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const winner = await store.load();
      if (winner === undefined) throw e;
      return CertificateAuthority.fromMaterial(winner, opts);
    }
    return ca;
  }

  /** The material to persist (contains private keys: for a CaStore only). */
  material(): CaMaterial {
    return {
      version: 1,
      root:
        this.#rootKeyPem === undefined
          ? { certPem: this.rootCertPem }
          : { certPem: this.rootCertPem, keyPem: this.#rootKeyPem },
      intermediate: { certPem: this.intermediateCertPem, keyPem: this.#intermediateKeyPem },
    };
  }

  /** Our CAs as issuer material (e.g. to pass the intermediate elsewhere); the root only when its key is known. */
  get rootDn(): string {
    return this.#root?.dn ?? ROOT_CA_DN;
  }
  get intermediateDn(): string {
    return this.#intermediate.dn;
  }

  toJSON(): Record<string, unknown> {
    return { rootFingerprint: this.rootFingerprint, root: ROOT_CA_ID, intermediate: INTERMEDIATE_CA_ID };
  }
  [inspect.custom](): string {
    return `CertificateAuthority { root: ${this.rootDn} (sha256 ${this.rootFingerprint.slice(0, 16)}…) }`;
  }

  // ------------------------------------------------------------ issuer resolution

  #external_(m: IssuerMaterial, field: string): IssuerCtx | ConfigError {
    const cacheKey = m.certPem;
    const hit = this.#external.get(cacheKey);
    if (hit !== undefined) {
      this.#external.delete(cacheKey);
      this.#external.set(cacheKey, hit);
      return hit;
    }
    let ctx: IssuerCtx;
    try {
      ctx = compileIssuer(
        m.id,
        m.certPem,
        safePrivateKey(m.keyPem, `issuer${m.id === undefined ? '' : ` ${m.id}`} key`),
        m.chainPem,
        `issuer${m.id === undefined ? '' : ` ${m.id}`}`,
      );
    } catch (e) {
      return { code: 'OXDS_INVALID_FIELD', message: (e as Error).message, field, severity: 'error' };
    }
    this.#external.set(cacheKey, ctx);
    if (this.#external.size > EXTERNAL_CACHE_MAX) {
      const oldest = this.#external.keys().next().value;
      if (oldest !== undefined) this.#external.delete(oldest);
    }
    return ctx;
  }

  /**
   * Finds the issuer a csr names: no reference → our intermediate; `otoroshi-intermediate-ca` /
   * `otoroshi-root-ca` or their subject DN → ours; else one of `issuers` by id, then by subject
   * DN. Undefined when nothing matches. `certPem` is the issuer's own certificate.
   */
  findIssuer(
    ref: string | undefined,
    issuers?: IssueOptions['issuers'],
  ): { ref: typeof INTERMEDIATE_CA_ID | typeof ROOT_CA_ID | IssuerMaterial; certPem: string } | undefined {
    if (ref === undefined) return { ref: INTERMEDIATE_CA_ID, certPem: this.intermediateCertPem };
    const r = ref.trim();
    if (r === INTERMEDIATE_CA_ID || dnEquals(r, this.#intermediate.dn))
      return { ref: INTERMEDIATE_CA_ID, certPem: this.intermediateCertPem };
    if (r === ROOT_CA_ID || dnEquals(r, this.rootDn)) return { ref: ROOT_CA_ID, certPem: this.rootCertPem };
    const material = (m: IssuerMaterial | undefined): { ref: IssuerMaterial; certPem: string } | undefined => {
      const first = m === undefined ? undefined : pemCerts(m.certPem)[0];
      return m === undefined || first === undefined ? undefined : { ref: m, certPem: first };
    };
    if (typeof issuers === 'function') return material(issuers(r));
    if (issuers === undefined) return undefined;
    const byId = issuers.find((m) => m.id === r);
    if (byId !== undefined) return material(byId);
    for (const m of issuers) {
      const found = material(m);
      if (found === undefined) continue;
      let dn: string;
      try {
        dn = formatDn(decodeName(certBasics(new X509Certificate(found.certPem).raw).subjectName));
      } catch {
        continue;
      }
      if (dnEquals(r, dn)) return found;
    }
    return undefined;
  }

  /** Resolves an issuer reference; unknown → error (never a silent self-signed certificate). */
  #resolve(ref: IssuerRef | undefined, opts: IssueOptions, field: string): IssuerCtx | ConfigError {
    if (ref !== undefined && typeof ref !== 'string') return this.#external_(ref, field);
    const found = this.findIssuer(ref, opts.issuers);
    if (found === undefined) {
      return {
        code: 'OXDS_UNRESOLVED_REFERENCE',
        message: `unknown issuer "${(ref ?? '').trim()}": no CA certificate with that id or subject DN`,
        field,
        severity: 'error',
      };
    }
    if (found.ref === INTERMEDIATE_CA_ID) return this.#intermediate;
    if (found.ref === ROOT_CA_ID) {
      if (this.#root === undefined)
        return {
          code: 'OXDS_INVALID_FIELD',
          message: `issuer ${ROOT_CA_ID}: the root CA key is not available (CA loaded from PEM without it)`,
          field,
          severity: 'error',
        };
      return this.#root;
    }
    return this.#external_(found.ref, field);
  }

  // ------------------------------------------------------------ issuing

  /** Issues a certificate (RSA keys come from the pool, generated off the event loop). */
  async issue(req: CertificateCsr, opts: IssueOptions): Promise<IssueResult> {
    if (opts.key === undefined) {
      const k = keySpecOf(req);
      if (k.algo === 'rsa') {
        if (!RsaKeyPool.isSupportedSize(k.size))
          return err(
            'OXDS_INVALID_FIELD',
            `unsupported RSA key size ${k.size} (2048, 3072 or 4096)`,
            `${opts.field ?? 'spec.csr'}.key.size`,
          );
        // Validate before spending a pooled key.
        const pre = this.issueSync(req, { ...opts, key: PROBE_KEY });
        if (!pre.ok) return pre;
        return this.issueSync(req, { ...opts, key: await this.pool.take(k.size) });
      }
    }
    return this.issueSync(req, opts);
  }

  /**
   * Synchronous issuance: ECDSA keys inline; an RSA csr needs `opts.key` or a ready pooled key
   * (otherwise an error result: use `issue`).
   */
  issueSync(req: CertificateCsr, opts: IssueOptions): IssueResult {
    const field = opts.field ?? 'spec.csr';
    const issuerCtx = this.#resolve(opts.issuer ?? req.issuer, opts, `${field}.issuer`);
    if ('code' in issuerCtx) return { ok: false, error: issuerCtx };
    const validity = validityOf(req, opts.now, field);
    if (failed(validity)) return validity;
    const sans = sansOf(req, field);
    if (failed(sans)) return sans;
    const attrs = subjectOf(req, sans, field);
    if (failed(attrs)) return attrs;
    // signature digest (the family follows the issuer key, as Otoroshi signs with the CA's algorithm)
    const hash = hashFromAlgName(req.digestAlg) ?? hashFromAlgName(req.signatureAlg);
    const signer = hash === undefined ? issuerCtx.signer : withHash(issuerCtx.signer, hash);
    if (opts.key === PROBE_KEY) return { ok: true, cert: undefined as unknown as IssuedCert };
    const keys = keyPairOf(req, opts.key, this.pool, field);
    if (failed(keys)) return keys;
    const { notBefore, notAfter } = validity;
    const ca = req.ca === true;
    const built = buildCertificate(
      {
        subject: encodeName(attrs),
        spki: keys.spki,
        notBefore,
        notAfter,
        ca,
        client: req.client === true,
        sans,
        ...(opts.serial === undefined ? {} : { serial: opts.serial }),
      },
      signer,
    );
    const certPem = der.toPem(built.der, 'CERTIFICATE');
    const cert: IssuedCert = {
      certPem,
      keyPem: keys.keyPem,
      chainPem: certPem + issuerCtx.chainPem,
      notBefore,
      notAfter,
      serialHex: built.serial.toString('hex'),
      renewAt: renewAt(notBefore, notAfter, opts.jitter ?? 0.1, opts.rand ?? Math.random),
      subject: formatDn(attrs),
      sans: sans.map(sanLabel),
      ca,
    };
    if (issuerCtx.id !== undefined) cert.issuerId = issuerCtx.id;
    return { ok: true, cert };
  }

  /**
   * A workload (sidecar) certificate: ECDSA P-256, 24 h, SPIFFE URI SAN (plus optional DNS
   * names), serverAuth + clientAuth, empty subject (SAN critical), signed by the intermediate.
   */
  workload(
    spiffeId: string,
    opts: { now: number; ttlMs?: number; dnsNames?: readonly string[]; key?: KeyObject; rand?: () => number },
  ): IssueResult {
    if (parseSpiffeId(spiffeId) === undefined)
      return err('OXDS_INVALID_FIELD', `invalid SPIFFE id ${JSON.stringify(spiffeId)}`, 'spiffeId');
    const o: IssueOptions = { now: opts.now };
    if (opts.key !== undefined) o.key = opts.key;
    if (opts.rand !== undefined) o.rand = opts.rand;
    return this.issueSync(
      {
        hosts: [spiffeId, ...(opts.dnsNames ?? [])],
        client: true,
        duration: opts.ttlMs ?? WORKLOAD_DURATION_MS,
        key: { algo: 'ecdsa', size: 256 },
      },
      o,
    );
  }

  /**
   * Issues many certificates, yielding to the event loop (setImmediate) every `batch`
   * certificates or `sliceMs` milliseconds, whichever comes first, so a mass re-issue never
   * blocks xDS pushes for long. Results are in request order.
   */
  async issueMany(
    reqs: readonly CertificateCsr[],
    opts: IssueOptions & { batch?: number; sliceMs?: number },
  ): Promise<IssueResult[]> {
    const batch = Math.max(1, opts.batch ?? 500);
    const sliceMs = opts.sliceMs ?? 10;
    const out: IssueResult[] = [];
    let n = 0;
    let sliceStart = performance.now();
    for (const req of reqs) {
      const k = opts.key === undefined ? keySpecOf(req) : undefined;
      out.push(k?.algo === 'rsa' ? await this.issue(req, opts) : this.issueSync(req, opts));
      if (++n >= batch || performance.now() - sliceStart >= sliceMs) {
        await new Promise<void>((r) => setImmediate(r));
        n = 0;
        sliceStart = performance.now();
      }
    }
    return out;
  }
}

/** Sentinel used by `issue` to validate an RSA csr before taking a pooled key. */
const PROBE_KEY = {} as KeyObject;

/** The key a csr asks for: algorithm (`ecdsa` | `rsa` | other, lower case) and size. */
export function keySpecOf(req: CertificateCsr): { algo: string; size: number } {
  const algo = (req.key?.algo ?? req.keyType ?? 'ecdsa').toLowerCase();
  const norm = algo === 'ec' ? 'ecdsa' : algo;
  const size = req.key?.size ?? req.keySize ?? (norm === 'rsa' ? 2048 : 256);
  return { algo: norm, size };
}
