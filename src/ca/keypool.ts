// Key generation. ECDSA keys are generated inline (~20k/s native). RSA key generation is slow
// (~6/s for 2048 bits, far less for 4096) so a small pool is pre-generated with the async
// `crypto.generateKeyPair` (libuv threadpool, off the event loop) and refilled in the background.
import * as der from './der.js';
import { createECDH, createPublicKey, generateKeyPair, generateKeyPairSync, type KeyObject } from 'node:crypto';

export type KeyAlgo = 'ecdsa' | 'rsa';

export const RSA_SIZES = [2048, 3072, 4096] as const;
export type RsaSize = (typeof RSA_SIZES)[number];

/** Otoroshi's ECDSA size → curve mapping: 384 → secp384r1, 521 → secp521r1, other → P-256. */
export function curveForSize(size: number | undefined): string {
  return size === 384 ? 'secp384r1' : size === 521 ? 'secp521r1' : 'prime256v1';
}

/** An ECDSA private key, generated synchronously (fast). */
export function generateEcKey(size?: number): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: curveForSize(size) }).privateKey;
}

const CURVE_OIDS: Record<string, string> = {
  prime256v1: '1.2.840.10045.3.1.7',
  secp384r1: '1.3.132.0.34',
  secp521r1: '1.3.132.0.35',
};
const EC_ALG_IDS = new Map<string, Buffer>();
function ecAlgId(curve: string): Buffer {
  let b = EC_ALG_IDS.get(curve);
  if (b === undefined) {
    b = der.sequence(der.oid('1.2.840.10045.2.1'), der.oid(CURVE_OIDS[curve] ?? CURVE_OIDS['prime256v1'] ?? ''));
    EC_ALG_IDS.set(curve, b);
  }
  return b;
}
const PKCS8_V0 = der.integer(0);
const EC_PRIV_V1 = der.integer(1);

const FIELD_BYTES: Record<string, number> = { prime256v1: 32, secp384r1: 48, secp521r1: 66 };

/**
 * A fresh ECDSA key pair as DER SubjectPublicKeyInfo + PKCS#8 (RFC 5915 ECPrivateKey inside),
 * encoded here from `crypto.createECDH` raw values. Two reasons not to use
 * `generateKeyPairSync` + `export`: OpenSSL 3's encoders are slow (`export({type:'spki'})`
 * ~200 µs, `pkcs8` PEM ~100 µs on Node 20), and `generateKeyPairSync` followed by a JWK export
 * can deadlock Node 20 (a GC during `ExportJWKEcKey` runs `~KeyGenJob`, which takes the key mutex
 * the export already holds — observed here under load). Leaf keys are never used to sign here,
 * so no KeyObject is needed.
 */
export function generateEcKeyPair(size?: number): { spki: Buffer; pkcs8: Buffer } {
  const curve = curveForSize(size);
  const ecdh = createECDH(curve);
  const pub = ecdh.generateKeys();
  const raw = ecdh.getPrivateKey();
  const n = FIELD_BYTES[curve] ?? raw.length;
  const d = raw.length >= n ? raw : Buffer.concat([Buffer.alloc(n - raw.length), raw]);
  const point = der.tlv(der.TAG.BIT_STRING, [Buffer.from([0]), pub]);
  const algId = ecAlgId(curve);
  const spki = der.tlv(der.TAG.SEQUENCE, [algId, point]);
  const ecPrivateKey = der.tlv(der.TAG.SEQUENCE, [EC_PRIV_V1, der.octetString(d), der.explicit(1, point)]);
  const pkcs8 = der.tlv(der.TAG.SEQUENCE, [PKCS8_V0, algId, der.octetString(ecPrivateKey)]);
  return { spki, pkcs8 };
}

/** DER SubjectPublicKeyInfo of a private (or public) key. */
export function spkiOf(key: KeyObject): Buffer {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
}

function generateRsaAsync(bits: number): Promise<KeyObject> {
  return new Promise((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength: bits, publicExponent: 0x10001 }, (err, _pub, priv) => {
      if (err !== null) reject(new Error(`RSA-${bits} key generation failed`));
      else resolve(priv);
    });
  });
}

export interface RsaKeyPoolOptions {
  /** Keys kept ready per size (default: 2048 → 2, 3072 → 1, 4096 → 0). */
  target?: Partial<Record<RsaSize, number>>;
  /** Concurrent background generations per pool (default 1, so the threadpool stays available for I/O). */
  concurrency?: number;
  /** Injectable generator (tests). */
  generate?: (bits: number) => Promise<KeyObject>;
}

/** A small pool of pre-generated RSA private keys. Lazy: nothing is generated before `warm`/`take`. */
export class RsaKeyPool {
  private readonly ready = new Map<number, KeyObject[]>();
  private readonly waiting = new Map<number, ((k: KeyObject) => void)[]>();
  private readonly inflight = new Map<number, number>();
  private running = 0;
  private closed = false;
  private readonly target: Record<number, number>;
  private readonly concurrency: number;
  private readonly gen: (bits: number) => Promise<KeyObject>;

  constructor(opts: RsaKeyPoolOptions = {}) {
    this.target = { 2048: 2, 3072: 1, 4096: 0, ...opts.target };
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
    this.gen = opts.generate ?? generateRsaAsync;
  }

  static isSupportedSize(size: number): size is RsaSize {
    return (RSA_SIZES as readonly number[]).includes(size);
  }

  /** Keys ready now for a size. */
  available(size: number): number {
    return this.ready.get(size)?.length ?? 0;
  }

  /** Starts filling the pool for `size` (all sizes with a non-zero target when omitted); resolves when full. */
  async warm(size?: number): Promise<void> {
    const sizes =
      size === undefined
        ? Object.keys(this.target)
            .map(Number)
            .filter((s) => (this.target[s] ?? 0) > 0)
        : [size];
    await Promise.all(
      sizes.map(async (s) => {
        const want = Math.max(1, this.target[s] ?? 0);
        while (!this.closed && this.available(s) < want) {
          this.pump(s, want);
          await new Promise<void>((r) => setTimeout(r, 10).unref());
        }
      }),
    );
  }

  /** A pooled key if one is ready (never blocks, never generates). */
  takeSync(size: number): KeyObject | undefined {
    const k = this.ready.get(size)?.shift();
    if (k !== undefined) this.pump(size);
    return k;
  }

  /** A key of `size` bits: from the pool, else the next one generated (off the event loop). */
  take(size: number): Promise<KeyObject> {
    if (!RsaKeyPool.isSupportedSize(size))
      return Promise.reject(new RangeError(`unsupported RSA key size ${size} (2048, 3072 or 4096)`));
    if (this.closed) return Promise.reject(new Error('key pool closed'));
    const k = this.takeSync(size);
    if (k !== undefined) return Promise.resolve(k);
    return new Promise((resolve) => {
      const q = this.waiting.get(size) ?? [];
      q.push(resolve);
      this.waiting.set(size, q);
      this.pump(size);
    });
  }

  /** Stops background refills (pending generations finish and are dropped). */
  close(): void {
    this.closed = true;
  }

  private pump(size: number, want?: number): void {
    if (this.closed) return;
    const target = want ?? this.target[size] ?? 0;
    const waiters = this.waiting.get(size)?.length ?? 0;
    const have = this.available(size) + (this.inflight.get(size) ?? 0);
    let missing = target + waiters - have;
    while (missing > 0 && this.running < this.concurrency) {
      missing--;
      this.running++;
      this.inflight.set(size, (this.inflight.get(size) ?? 0) + 1);
      this.gen(size).then(
        (key) => this.done(size, key),
        () => this.done(size, undefined),
      );
    }
  }

  private done(size: number, key: KeyObject | undefined): void {
    this.running--;
    this.inflight.set(size, (this.inflight.get(size) ?? 1) - 1);
    if (key !== undefined) {
      const w = this.waiting.get(size)?.shift();
      if (w !== undefined) w(key);
      else if (!this.closed) {
        const q = this.ready.get(size) ?? [];
        q.push(key);
        this.ready.set(size, q);
      }
    }
    // Refill this size, then any other size with waiters or below target.
    this.pump(size);
    for (const s of new Set([...this.waiting.keys(), ...Object.keys(this.target).map(Number)]))
      if (s !== size) this.pump(s);
  }
}
