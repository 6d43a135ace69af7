// Build and sign X.509 v3 certificates with node:crypto (RFC 5280).
// Node 20 can parse and verify certificates but not build them; this module assembles the DER
// itself. Constant parts (algorithm identifiers, the issuer's Name and AuthorityKeyIdentifier,
// leaf BasicConstraints/KeyUsage/EKU) are encoded once; per certificate only the serial, the
// validity, the subject, the public key, SKI/SAN and the signature are built.
import { createHash, randomFillSync, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import * as der from './der.js';

// ---------------------------------------------------------------- OIDs

export const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  ecdsaWithSHA384: '1.2.840.10045.4.3.3',
  ecdsaWithSHA512: '1.2.840.10045.4.3.4',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  sha384WithRSA: '1.2.840.113549.1.1.12',
  sha512WithRSA: '1.2.840.113549.1.1.13',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

// ---------------------------------------------------------------- distinguished names

interface AttrDef {
  oid: string;
  short: string;
  enc: 'utf8' | 'printable' | 'ia5';
}
const ATTRS: AttrDef[] = [
  { oid: '2.5.4.3', short: 'CN', enc: 'utf8' },
  { oid: '2.5.4.4', short: 'SURNAME', enc: 'utf8' },
  { oid: '2.5.4.5', short: 'SERIALNUMBER', enc: 'printable' },
  { oid: '2.5.4.6', short: 'C', enc: 'printable' },
  { oid: '2.5.4.7', short: 'L', enc: 'utf8' },
  { oid: '2.5.4.8', short: 'ST', enc: 'utf8' },
  { oid: '2.5.4.9', short: 'STREET', enc: 'utf8' },
  { oid: '2.5.4.10', short: 'O', enc: 'utf8' },
  { oid: '2.5.4.11', short: 'OU', enc: 'utf8' },
  { oid: '2.5.4.12', short: 'T', enc: 'utf8' },
  { oid: '2.5.4.42', short: 'GIVENNAME', enc: 'utf8' },
  { oid: '2.5.4.46', short: 'DNQUALIFIER', enc: 'printable' },
  { oid: '0.9.2342.19200300.100.1.1', short: 'UID', enc: 'utf8' },
  { oid: '0.9.2342.19200300.100.1.25', short: 'DC', enc: 'ia5' },
  { oid: '1.2.840.113549.1.9.1', short: 'E', enc: 'ia5' },
];
const ALIASES: Record<string, string> = {
  SN: 'SURNAME',
  S: 'ST',
  TITLE: 'T',
  G: 'GIVENNAME',
  EMAILADDRESS: 'E',
  EMAIL: 'E',
  USERID: 'UID',
};
const BY_SHORT = new Map(ATTRS.map((a) => [a.short, a]));
const BY_OID = new Map(ATTRS.map((a) => [a.oid, a]));

export interface DnAttribute {
  /** Short name (`CN`, `O`, ...) or dotted OID for unknown attributes. */
  type: string;
  value: string;
}

/**
 * Parses `CN=x, OU=y, O=z` into attributes in the written order (the order BouncyCastle's
 * `X500Name` encodes, hence Otoroshi's). `\,` escapes a comma; names are case-insensitive.
 */
export function parseDn(dn: string): DnAttribute[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i] as string;
    if (c === '\\' && i + 1 < dn.length) {
      cur += dn[++i];
    } else if (c === ',' || c === ';') {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  const out: DnAttribute[] = [];
  for (const raw of parts) {
    if (raw.trim() === '') continue;
    const eq = raw.indexOf('=');
    if (eq <= 0) throw new RangeError(`invalid DN part "${raw.trim()}" (expected name=value)`);
    const name = raw.slice(0, eq).trim();
    const value = raw.slice(eq + 1).trim();
    out.push({ type: canonicalAttr(name), value });
  }
  return out;
}

function canonicalAttr(name: string): string {
  if (/^\d+(\.\d+)+$/.test(name)) return BY_OID.get(name)?.short ?? name;
  const up = name.toUpperCase();
  const short = ALIASES[up] ?? up;
  if (!BY_SHORT.has(short)) throw new RangeError(`unknown DN attribute "${name}"`);
  return short;
}

function escapeDnValue(v: string): string {
  return v.replace(/[\\,;]/g, (c) => '\\' + c);
}

/** `CN=x, OU=y, O=z` (the reverse of parseDn). */
export function formatDn(attrs: readonly DnAttribute[]): string {
  return attrs.map((a) => `${a.type}=${escapeDnValue(a.value)}`).join(', ');
}

/**
 * DN equality as Otoroshi compares issuers: parts trimmed, names case-insensitive
 * (aliases such as `sn`/`surname` unified), compared as sets; values case-sensitive.
 * Unparseable DNs are equal to nothing.
 */
export function dnEquals(a: string, b: string): boolean {
  try {
    const sa = new Set(parseDn(a).map((x) => `${x.type}=${x.value}`));
    const sb = new Set(parseDn(b).map((x) => `${x.type}=${x.value}`));
    if (sa.size !== sb.size || sa.size === 0) return false;
    for (const x of sa) if (!sb.has(x)) return false;
    return true;
  } catch {
    return false;
  }
}

/** DER `Name` (RDNSequence, one attribute per RDN) from attributes. */
export function encodeName(attrs: readonly DnAttribute[]): Buffer {
  const rdns = attrs.map((a) => {
    const def = BY_SHORT.get(a.type);
    const oid = def?.oid ?? a.type;
    let value: Buffer;
    if (def?.enc === 'printable' && der.isPrintable(a.value)) value = der.printableString(a.value);
    else if (def?.enc === 'ia5' && /^[\x00-\x7f]*$/.test(a.value)) value = der.ia5String(a.value);
    else value = der.utf8String(a.value);
    return der.tlv(der.TAG.SET, der.sequence(der.oid(oid), value));
  });
  return der.tlv(der.TAG.SEQUENCE, rdns);
}

/** Attributes of a DER `Name`. */
export function decodeName(name: Buffer): DnAttribute[] {
  const out: DnAttribute[] = [];
  const root = der.readTlv(name, 0);
  for (const rdn of der.children(name, root)) {
    for (const atv of der.children(name, rdn)) {
      const [t, v] = der.children(name, atv);
      if (t === undefined || v === undefined) continue;
      const dotted = der.decodeOid(der.content(name, t));
      const bytes = der.content(name, v);
      const value = v.tag === 0x1e ? Buffer.from(bytes).swap16().toString('utf16le') : bytes.toString('utf8');
      out.push({ type: BY_OID.get(dotted)?.short ?? dotted, value });
    }
  }
  return out;
}

// ---------------------------------------------------------------- keys and algorithms

export type HashName = 'sha256' | 'sha384' | 'sha512';

export interface KeyInfo {
  type: 'ec' | 'rsa';
  /** EC curve (`prime256v1`, `secp384r1`, `secp521r1`) or RSA modulus bits. */
  curve?: string;
  bits?: number;
}

export function keyInfo(key: KeyObject): KeyInfo {
  const t = key.asymmetricKeyType;
  const d = key.asymmetricKeyDetails ?? {};
  if (t === 'ec') return { type: 'ec', curve: d.namedCurve ?? 'prime256v1' };
  if (t === 'rsa') return { type: 'rsa', bits: d.modulusLength ?? 2048 };
  throw new RangeError(`unsupported key type ${t ?? 'unknown'} (ECDSA or RSA only)`);
}

/** The digest natural for a signing key: SHA-384 for P-384, SHA-512 for P-521, else SHA-256. */
export function defaultHash(info: KeyInfo): HashName {
  if (info.type === 'ec')
    return info.curve === 'secp384r1' ? 'sha384' : info.curve === 'secp521r1' ? 'sha512' : 'sha256';
  return 'sha256';
}

/**
 * Digest from Otoroshi's `signatureAlg` (`SHA256WithRSAEncryption`, `SHA384WithECDSA`, ...) or `digestAlg` (`SHA-256`).
 */
export function hashFromAlgName(name: string | undefined): HashName | undefined {
  if (name === undefined) return undefined;
  const n = name.toUpperCase().replace(/[^A-Z0-9]/g, '');
  if (n.includes('SHA512')) return 'sha512';
  if (n.includes('SHA384')) return 'sha384';
  if (n.includes('SHA256')) return 'sha256';
  return undefined;
}

const SIG_ALG_CACHE = new Map<string, Buffer>();
/** AlgorithmIdentifier of the signature: ECDSA (no parameters) or RSA PKCS#1 v1.5 (NULL parameters). */
export function signatureAlgorithm(type: 'ec' | 'rsa', hash: HashName): Buffer {
  const k = `${type}/${hash}`;
  let b = SIG_ALG_CACHE.get(k);
  if (b === undefined) {
    if (type === 'ec') {
      b = der.sequence(
        der.oid(
          hash === 'sha256' ? OID.ecdsaWithSHA256 : hash === 'sha384' ? OID.ecdsaWithSHA384 : OID.ecdsaWithSHA512,
        ),
      );
    } else {
      b = der.sequence(
        der.oid(hash === 'sha256' ? OID.sha256WithRSA : hash === 'sha384' ? OID.sha384WithRSA : OID.sha512WithRSA),
        der.NULL,
      );
    }
    SIG_ALG_CACHE.set(k, b);
  }
  return b;
}

/** The subjectPublicKey bits of a DER SubjectPublicKeyInfo. */
export function spkiPublicKeyBits(spki: Buffer): Buffer {
  const root = der.readTlv(spki, 0);
  const [, bits] = der.children(spki, root);
  if (bits === undefined || bits.tag !== der.TAG.BIT_STRING) throw new RangeError('invalid SubjectPublicKeyInfo');
  return spki.subarray(bits.contentStart + 1, bits.end);
}

/** Key identifier per RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Buffer): Buffer {
  return createHash('sha1').update(spkiPublicKeyBits(spki)).digest();
}

// ---------------------------------------------------------------- extensions

function extension(oidDotted: string, critical: boolean, value: Buffer): Buffer {
  return critical
    ? der.sequence(der.oid(oidDotted), der.boolean(true), der.octetString(value))
    : der.sequence(der.oid(oidDotted), der.octetString(value));
}

const EXT = {
  bcLeaf: extension(OID.basicConstraints, true, der.sequence()),
  bcCa: extension(OID.basicConstraints, true, der.sequence(der.boolean(true))),
  /** digitalSignature(0) | keyEncipherment(2) */
  kuLeaf: extension(OID.keyUsage, true, der.namedBits([0, 2])),
  /** keyCertSign(5) | cRLSign(6) */
  kuCa: extension(OID.keyUsage, true, der.namedBits([5, 6])),
  ekuServer: extension(OID.extKeyUsage, false, der.sequence(der.oid(OID.serverAuth))),
  ekuServerClient: extension(OID.extKeyUsage, false, der.sequence(der.oid(OID.serverAuth), der.oid(OID.clientAuth))),
};
const SKI_PREFIX = der.oid(OID.subjectKeyIdentifier);
const SAN_OID = der.oid(OID.subjectAltName);
const CRITICAL = der.boolean(true);

function bcCaWithPathLen(pathLen: number): Buffer {
  return extension(OID.basicConstraints, true, der.sequence(der.boolean(true), der.integer(pathLen)));
}

export function akiExtension(keyId: Buffer): Buffer {
  return extension(OID.authorityKeyIdentifier, false, der.sequence(der.implicit(0, keyId)));
}

function skiExtension(keyId: Buffer): Buffer {
  return der.sequence(SKI_PREFIX, der.octetString(der.octetString(keyId)));
}

export type SanKind = 'dns' | 'uri' | 'ip' | 'email';
export interface SubjectAltName {
  kind: SanKind;
  value: string;
}

/**
 * Classifies a csr `hosts` entry: an IP literal → iPAddress, `scheme://...` (e.g. a SPIFFE id)
 * → URI, anything else → dNSName.
 */
export function sanOf(host: string): SubjectAltName {
  const h = host.trim();
  const bare = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  if (isIP(bare) !== 0) return { kind: 'ip', value: bare };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(h)) return { kind: 'uri', value: h };
  return { kind: 'dns', value: h.toLowerCase() };
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // IPv6, with optional embedded IPv4 tail.
  let s = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  let tail: number[] = [];
  if (v4?.[1] !== undefined) {
    tail = v4[1].split('.').map(Number);
    s = s.slice(0, -v4[1].length) + '0:0';
  }
  const [head = '', rest] = s.split('::');
  const hp = head === '' ? [] : head.split(':');
  const rp = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? hp : [...hp, ...Array<string>(8 - hp.length - rp.length).fill('0'), ...rp];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (tail.length === 4) Buffer.from(tail).copy(out, 12);
  return out;
}

function generalName(s: SubjectAltName): Buffer {
  switch (s.kind) {
    case 'dns':
      return der.implicit(2, Buffer.from(s.value, 'ascii'));
    case 'uri':
      return der.implicit(6, Buffer.from(s.value, 'ascii'));
    case 'email':
      return der.implicit(1, Buffer.from(s.value, 'ascii'));
    case 'ip':
      return der.implicit(7, ipBytes(s.value));
  }
}

/** SubjectAltName extension; critical when the subject is empty (RFC 5280 §4.2.1.6). */
export function sanExtension(sans: readonly SubjectAltName[], critical: boolean): Buffer {
  const value = der.tlv(der.TAG.SEQUENCE, sans.map(generalName));
  return critical
    ? der.sequence(SAN_OID, CRITICAL, der.octetString(value))
    : der.sequence(SAN_OID, der.octetString(value));
}

// ---------------------------------------------------------------- signer (per issuer, precomputed)

/** Everything constant about an issuer, encoded once. */
export interface Signer {
  /** DER Name of the issuer (copied verbatim into issued certificates). */
  name: Buffer;
  /** The issuer's key identifier (its SKI), used as AuthorityKeyIdentifier. */
  keyId: Buffer;
  key: KeyObject;
  type: 'ec' | 'rsa';
  hash: HashName;
  /** AlgorithmIdentifier for `hash` + key type. */
  sigAlg: Buffer;
  /** AuthorityKeyIdentifier extension. */
  aki: Buffer;
  /** [0] EXPLICIT version + (filled per cert) serial... the constant `signature, issuer` run. */
  algAndIssuer: Buffer;
}

export function makeSigner(name: Buffer, keyId: Buffer, key: KeyObject): Signer {
  const info = keyInfo(key);
  const hash = defaultHash(info);
  const sigAlg = signatureAlgorithm(info.type, hash);
  return {
    name,
    keyId,
    key,
    type: info.type,
    hash,
    sigAlg,
    aki: akiExtension(keyId),
    algAndIssuer: Buffer.concat([sigAlg, name]),
  };
}

/** The same signer with another digest (a csr's `signatureAlg`/`digestAlg`). */
export function withHash(s: Signer, hash: HashName): Signer {
  if (hash === s.hash) return s;
  const sigAlg = signatureAlgorithm(s.type, hash);
  return { ...s, hash, sigAlg, algAndIssuer: Buffer.concat([sigAlg, s.name]) };
}

// ---------------------------------------------------------------- building

const VERSION_V3 = der.explicit(0, der.integer(2));

let randPool = Buffer.alloc(0);
let randOff = 0;
/** A random positive 128-bit serial (DER-minimal: first byte 0x01–0x7f). */
export function randomSerial(): Buffer {
  if (randOff + 16 > randPool.length) {
    randPool = randomFillSync(Buffer.allocUnsafe(16 * 512));
    randOff = 0;
  }
  const s = Buffer.from(randPool.subarray(randOff, randOff + 16));
  randOff += 16;
  s[0] = (s[0] ?? 0) & 0x7f || 0x01;
  return s;
}

let validityCache: { nb: number; na: number; der: Buffer } | undefined;
/** Validity with both times truncated to whole seconds. */
export function encodeValidity(notBefore: number, notAfter: number): Buffer {
  const nb = Math.floor(notBefore / 1000) * 1000;
  const na = Math.floor(notAfter / 1000) * 1000;
  if (validityCache !== undefined && validityCache.nb === nb && validityCache.na === na) return validityCache.der;
  const v = der.sequence(der.x509Time(nb), der.x509Time(na));
  validityCache = { nb, na, der: v };
  return v;
}

export interface CertParams {
  /** DER Name of the subject (`encodeName`); may be an empty SEQUENCE when SANs are present. */
  subject: Buffer;
  /** DER SubjectPublicKeyInfo of the subject key. */
  spki: Buffer;
  notBefore: number;
  notAfter: number;
  serial?: Buffer;
  ca: boolean;
  pathLen?: number;
  /** EKU clientAuth in addition to serverAuth (leaves only). */
  client?: boolean;
  sans?: readonly SubjectAltName[];
}

export interface BuiltCert {
  der: Buffer;
  serial: Buffer;
  /** Subject key identifier written in the certificate. */
  keyId: Buffer;
}

const EMPTY_NAME = Buffer.from([0x30, 0x00]);

/** Builds and signs one certificate. */
export function buildCertificate(p: CertParams, signer: Signer): BuiltCert {
  const serial = p.serial ?? randomSerial();
  const keyId = keyIdentifier(p.spki);
  const exts: Buffer[] = [];
  if (p.ca) {
    exts.push(p.pathLen === undefined ? EXT.bcCa : bcCaWithPathLen(p.pathLen), EXT.kuCa);
  } else {
    exts.push(EXT.bcLeaf, EXT.kuLeaf, p.client === true ? EXT.ekuServerClient : EXT.ekuServer);
  }
  exts.push(skiExtension(keyId));
  // A self-signed certificate carries an AKI equal to its own SKI (harmless, and what BouncyCastle does).
  exts.push(signer.aki);
  if (p.sans !== undefined && p.sans.length > 0) exts.push(sanExtension(p.sans, p.subject.equals(EMPTY_NAME)));
  const tbs = der.tlv(der.TAG.SEQUENCE, [
    VERSION_V3,
    der.tlv(der.TAG.INTEGER, serial),
    signer.algAndIssuer,
    encodeValidity(p.notBefore, p.notAfter),
    p.subject,
    p.spki,
    der.explicit(3, der.tlv(der.TAG.SEQUENCE, exts)),
  ]);
  const sig =
    signer.type === 'ec'
      ? sign(signer.hash, tbs, { key: signer.key, dsaEncoding: 'der' })
      : sign(signer.hash, tbs, signer.key);
  const bits = der.tlv(der.TAG.BIT_STRING, [Buffer.from([0]), sig]);
  return { der: der.tlv(der.TAG.SEQUENCE, [tbs, signer.sigAlg, bits]), serial, keyId };
}

// ---------------------------------------------------------------- reading what we need back

export interface CertBasics {
  /** DER Name of the subject, verbatim. */
  subjectName: Buffer;
  spki: Buffer;
  /** SubjectKeyIdentifier extension value, or the RFC 5280 method-1 identifier when absent. */
  keyId: Buffer;
  serial: Buffer;
}

/** Subject Name, SPKI and key identifier of a DER certificate (for using it as an issuer). */
export function certBasics(certDer: Buffer): CertBasics {
  const root = der.readTlv(certDer, 0);
  const [tbsT] = der.children(certDer, root);
  if (tbsT === undefined) throw new RangeError('invalid certificate');
  let fields = der.children(certDer, tbsT);
  if (fields[0]?.tag === 0xa0) fields = fields.slice(1);
  const [serialT, , , , subjectT, spkiT, ...rest] = fields;
  if (serialT === undefined || subjectT === undefined || spkiT === undefined)
    throw new RangeError('invalid certificate');
  const spki = der.raw(certDer, spkiT);
  let keyId: Buffer | undefined;
  const extsT = rest.find((t) => t.tag === 0xa3);
  if (extsT !== undefined) {
    const [seq] = der.children(certDer, extsT);
    if (seq !== undefined) {
      for (const ext of der.children(certDer, seq)) {
        const parts = der.children(certDer, ext);
        const first = parts[0];
        const last = parts[parts.length - 1];
        if (first === undefined || last === undefined) continue;
        if (der.decodeOid(der.content(certDer, first)) === OID.subjectKeyIdentifier) {
          const inner = der.content(certDer, last);
          keyId = Buffer.from(der.content(inner, der.readTlv(inner, 0)));
        }
      }
    }
  }
  return {
    subjectName: Buffer.from(der.raw(certDer, subjectT)),
    spki: Buffer.from(spki),
    keyId: keyId ?? keyIdentifier(spki),
    serial: Buffer.from(der.content(certDer, serialT)),
  };
}
