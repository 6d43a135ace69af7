// Renewal schedule (pure): renew at two thirds of the lifetime, with jitter so that a fleet
// issued together does not renew together (docs/decisions.md: "Issuers, keys and renewal"; Otoroshi itself renews at 80
// %).

/** Never schedule a renewal later than this before expiry. */
export const RENEW_MARGIN_MS = 5 * 60 * 1000;

/**
 * When to renew a certificate valid `notBefore` → `notAfter` (epoch ms):
 * `notBefore + 2/3 × lifetime ± jitterFraction × lifetime` (uniform, `rand()` in [0, 1)),
 * clamped to [notBefore, notAfter − 5 min] (notBefore when the lifetime is shorter than that).
 */
export function renewAt(
  notBefore: number,
  notAfter: number,
  jitterFraction = 0.1,
  rand: () => number = Math.random,
): number {
  const life = Math.max(0, notAfter - notBefore);
  const jitter = jitterFraction > 0 ? (rand() * 2 - 1) * jitterFraction * life : 0;
  const t = Math.round(notBefore + (life * 2) / 3 + jitter);
  const latest = notAfter - RENEW_MARGIN_MS;
  if (latest <= notBefore) return notBefore;
  return Math.min(Math.max(t, notBefore), latest);
}

export interface RenewableCert {
  notBefore: number;
  notAfter: number;
  /** The scheduled renewal time (with jitter) when one was fixed at issuance. */
  renewAt?: number;
}

/**
 * Whether a certificate is due: `now` ≥ its scheduled renewAt (or the jitter-free two-thirds
 * point when none was recorded, so repeated checks never flap).
 */
export function dueForRenewal(cert: RenewableCert, now: number): boolean {
  const at = cert.renewAt ?? renewAt(cert.notBefore, cert.notAfter, 0);
  return now >= at;
}
