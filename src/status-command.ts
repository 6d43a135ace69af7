// `otoroshi-xds status [--watch]`: the connected xDS streams of a running server, read from its
// admin API (`GET /debug/proxies`), as a table in the manner of `istioctl proxy-status`.
import { TYPE_URLS } from '../proto/loader.js';
import type { NodeStatus, TypeStatus } from './xds/node-status.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:18080';

/** Columns, in display order (the resource type each one reports). */
export const TYPE_COLUMNS: ReadonlyArray<{ header: string; typeUrl: string }> = [
  { header: 'CDS', typeUrl: TYPE_URLS.cluster },
  { header: 'LDS', typeUrl: TYPE_URLS.listener },
  { header: 'EDS', typeUrl: TYPE_URLS.endpoint },
  { header: 'RDS', typeUrl: TYPE_URLS.route },
  { header: 'SDS', typeUrl: TYPE_URLS.secret },
];

const NACK_MESSAGE_CHARS = 40;

/** `127.0.0.1:18080` → `http://127.0.0.1:18080`; trailing slashes dropped. */
export function normalizeAdminUrl(admin: string): string {
  const s = admin.trim().replace(/\/+$/, '');
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`;
}

/** Thrown by `fetchProxies` with a message fit for a terminal. */
export class StatusError extends Error {
  override readonly name = 'StatusError';
}

function describeFetchError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
  // undici: TypeError('fetch failed') with the socket error as `cause`.
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message;
  }
  return err.message;
}

/** GET `<admin>/debug/proxies`: every connected xDS stream. Throws a `StatusError` on any failure. */
export async function fetchProxies(adminUrl: string, opts: { timeoutMs?: number } = {}): Promise<NodeStatus[]> {
  const base = normalizeAdminUrl(adminUrl);
  const url = `${base}/debug/proxies`;
  let res: Response;
  try {
    // A server protected by --admin-token: the same OXDS_ADMIN_TOKEN env var authenticates the CLI.
    const token = process.env.OXDS_ADMIN_TOKEN;
    res = await fetch(url, {
      signal: AbortSignal.timeout(opts.timeoutMs ?? 5000),
      headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });
  } catch (err) {
    throw new StatusError(
      `cannot reach the otoroshi-xds admin API at ${base} (${describeFetchError(err)}); is the server running? ` +
        `Set --admin or OXDS_ADMIN_URL`,
    );
  }
  const text = await res.text().catch(() => '');
  if (res.status === 404)
    throw new StatusError(
      `${url} answered 404: this admin API does not serve /debug/proxies (is ${base} an otoroshi-xds admin port?)`,
    );
  if (!res.ok) throw new StatusError(`${url} answered HTTP ${res.status}: ${text.slice(0, 200)}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new StatusError(`${url} did not return JSON: ${text.slice(0, 200)}`);
  }
  const proxies = (body as { proxies?: unknown } | null)?.proxies;
  if (!Array.isArray(proxies)) throw new StatusError(`${url} returned no "proxies" array`);
  return proxies as NodeStatus[];
}

/** `5s`, `3m12s`, `2h05m`, `4d3h` (no "ago"); `-` for an unparsable time. */
export function formatAge(fromIso: string, now: Date = new Date()): string {
  const t = Date.parse(fromIso);
  if (Number.isNaN(t)) return '-';
  let s = Math.max(0, Math.floor((now.getTime() - t) / 1000));
  if (s < 60) return `${s}s`;
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d}d${h}h`;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  return `${m}m${String(s).padStart(2, '0')}s`;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/**
 * One cell: `-` (type not subscribed on this stream), `NOT SENT` (subscribed, nothing sent yet),
 * `SYNCED` (the last version sent is ACKed), `NACKED: <message>` (the last version sent was
 * rejected), `STALE (sent X, acked Y)` (sent, no answer yet or an older version ACKed).
 */
export function typeCell(t: TypeStatus | undefined): string {
  if (!t) return '-';
  const subscribed = t.wildcard || t.subscribed.length > 0;
  if (t.sentVersion === undefined) return subscribed ? 'NOT SENT' : '-';
  if (t.ackedVersion === t.sentVersion) return 'SYNCED';
  if (t.lastNack && t.lastNack.version === t.sentVersion) {
    const msg = oneLine(t.lastNack.message);
    const shown = msg.length > NACK_MESSAGE_CHARS ? `${msg.slice(0, NACK_MESSAGE_CHARS)}…` : msg || '(no message)';
    return `NACKED: ${shown}`;
  }
  return `STALE (sent ${t.sentVersion}, acked ${t.ackedVersion ?? '-'})`;
}

export interface ProxyTableOptions {
  /** Reference time of CONNECTED SINCE (default: now). */
  now?: Date;
}

export const TABLE_HEADERS = ['NODE ID', 'TYPE', 'STREAM', ...TYPE_COLUMNS.map((c) => c.header), 'CONNECTED SINCE'];

/** The rows of the table (without headers), sorted by node id, then stream id. */
export function proxyRows(proxies: readonly NodeStatus[], opts: ProxyTableOptions = {}): string[][] {
  const now = opts.now ?? new Date();
  return [...proxies]
    .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : a.streamId - b.streamId))
    .map((p) => [
      p.nodeId || '(no node id)',
      p.nodeType,
      p.service === 'sds' ? `${p.streamKind} (sds)` : p.streamKind,
      ...TYPE_COLUMNS.map((c) => typeCell(p.types?.[c.typeUrl])),
      formatAge(p.connectedAt, now),
    ]);
}

/** `istioctl proxy-status`-like table: one row per stream, columns padded, 3 spaces apart. */
export function formatProxyTable(proxies: readonly NodeStatus[], opts: ProxyTableOptions = {}): string {
  if (proxies.length === 0) return 'no connected proxies\n';
  const rows = [TABLE_HEADERS, ...proxyRows(proxies, opts)];
  const widths = TABLE_HEADERS.map((_, i) => Math.max(...rows.map((r) => [...(r[i] ?? '')].length)));
  return rows
    .map(
      (r) =>
        r
          .map((cell, i) => (i === r.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - [...cell].length)))
          .join('   ')
          .trimEnd() + '\n',
    )
    .join('');
}

export interface RunStatusOptions {
  admin: string;
  watch: boolean;
  intervalMs: number;
  out: NodeJS.WritableStream;
  /** Where errors go (default: `out`). */
  err?: NodeJS.WritableStream;
  /** Stops `--watch` (besides SIGINT); used by tests. */
  signal?: AbortSignal;
}

const CLEAR = '\x1b[2J\x1b[H';

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Prints the table once (exit code 0, or 1 with a message when the admin API cannot be read), or
 * with `watch` redraws it every `intervalMs` until SIGINT (or `signal`), showing fetch errors in
 * place and retrying; returns 0 when stopped.
 */
export async function runStatus(opts: RunStatusOptions): Promise<number> {
  const err = opts.err ?? opts.out;
  const admin = normalizeAdminUrl(opts.admin);
  if (!opts.watch) {
    try {
      opts.out.write(formatProxyTable(await fetchProxies(admin)));
      return 0;
    } catch (e) {
      err.write(`otoroshi-xds status: ${e instanceof Error ? e.message : String(e)}\n`);
      return 1;
    }
  }

  const stop = new AbortController();
  const onSigint = (): void => stop.abort();
  process.once('SIGINT', onSigint);
  const onAbort = (): void => stop.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) stop.abort();
  const interval = Math.max(100, opts.intervalMs);
  try {
    while (!stop.signal.aborted) {
      let body: string;
      try {
        body = formatProxyTable(await fetchProxies(admin, { timeoutMs: Math.max(1000, interval) }));
      } catch (e) {
        body = `error: ${e instanceof Error ? e.message : String(e)}\n(retrying)\n`;
      }
      if (stop.signal.aborted) break;
      const header =
        `otoroshi-xds status — ${admin} — ${new Date().toISOString()} — ` +
        `every ${interval / 1000}s, Ctrl-C to quit\n\n`;
      opts.out.write(CLEAR + header + body);
      await sleep(interval, stop.signal);
    }
    return 0;
  } finally {
    process.removeListener('SIGINT', onSigint);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
