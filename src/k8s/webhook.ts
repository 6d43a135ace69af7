// Validating admission webhook ("CRD validation in kubectl"): the API server sends an
// AdmissionReview for every create/update of a proxy.otoroshi.io object; we answer with the
// verdict of the same buildModel the controller runs, on the current view with the reviewed
// object in place of its stored version (so references and host/path conflicts are checked
// against what the cluster holds). Errors deny with the lines `otoroshi-xds validate` prints;
// warnings go back as admission warnings (kubectl prints them).
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ConfigView, KubeObject, StoredObject } from '../model/types.js';
import { buildModel, classify, type ModelSettings } from '../model/build.js';
import { formatError } from '../pipeline.js';
import { objectKey } from '../model/ids.js';
import { isObject } from '../model/problems.js';
import type { KubeClient } from './client.js';
import type { CertificateAuthority } from '../ca/ca.js';
import { reviewInjection, type InjectOptions } from './inject.js';
import { admissionRequest, type ReviewResult } from './admission.js';

/** Largest AdmissionReview accepted (an object is at most ~1.5 MiB in etcd; a review holds two). */
export const MAX_REVIEW_BYTES = 4 * 1024 * 1024;
const MAX_WARNINGS = 20;
const MAX_WARNING_CHARS = 400;
const MAX_MESSAGE_CHARS = 8000;

export type { AdmissionResponse, AdmissionReviewOut, ReviewResult } from './admission.js';

const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** The view with `object` put in place of its stored version (or added, newest of all). */
export function viewWith(view: ConfigView, object: KubeObject): { view: ConfigView; key: string } {
  const key = objectKey(object);
  const stored = view.objects.find((o) => o.key === key);
  const seq = stored?.origin.seq ?? view.objects.reduce((m, o) => Math.max(m, o.origin.seq), 0) + 1;
  const entry: StoredObject = { key, object, origin: { seq } };
  return { view: { objects: [...view.objects.filter((o) => o.key !== key), entry], loadErrors: [] }, key };
}

/**
 * Answers one AdmissionReview (v1). Malformed input → `ok: false` with the field at fault (the
 * HTTP layer answers 400). Objects of kinds we do not read, and deletes, are allowed.
 */
export function reviewAdmission(body: unknown, view: ConfigView, settings: Partial<ModelSettings>): ReviewResult {
  const a = admissionRequest(body);
  if (!a.ok) return a;
  const { req, answer } = a;
  const op = req['operation'];
  if (op !== 'CREATE' && op !== 'UPDATE') return answer({ allowed: true });
  const raw = req['object'];
  if (
    !isObject(raw) ||
    !isObject(raw['metadata']) ||
    typeof raw['apiVersion'] !== 'string' ||
    typeof raw['kind'] !== 'string'
  ) {
    return { ok: false, error: 'request.object: expected an object with apiVersion, kind and metadata' };
  }
  if (classify(raw['apiVersion'], raw['kind']) === undefined) return answer({ allowed: true });
  const meta = raw['metadata'] as Record<string, unknown>;
  const namespace =
    typeof meta['namespace'] === 'string' && meta['namespace'] !== ''
      ? meta['namespace']
      : typeof req['namespace'] === 'string'
        ? req['namespace']
        : undefined;
  const name =
    typeof meta['name'] === 'string' && meta['name'] !== ''
      ? meta['name']
      : typeof req['name'] === 'string'
        ? req['name']
        : '';
  // generateName: the name is not known yet; a placeholder keeps it apart from every stored object.
  const object = {
    ...raw,
    metadata: {
      ...meta,
      name: name || `${String(meta['generateName'] ?? '')}<generated>`,
      ...(namespace ? { namespace } : {}),
    },
  } as unknown as KubeObject;
  const { view: next, key } = viewWith(view, object);
  const built = buildModel(next, settings);
  const problems = built.statuses.filter((s) => s.key === key).flatMap((s) => s.errors);
  const errors = problems.filter((e) => e.severity === 'error');
  const warnings = problems
    .filter((e) => e.severity === 'warning')
    .slice(0, MAX_WARNINGS)
    .map((e) => clip(formatError(e), MAX_WARNING_CHARS));
  if (errors.length === 0) return answer({ allowed: true, ...(warnings.length ? { warnings } : {}) });
  const message = clip(`otoroshi-xds: ${errors.map(formatError).join('; ')}`, MAX_MESSAGE_CHARS);
  return answer({
    allowed: false,
    status: { code: 422, reason: 'Invalid', message },
    ...(warnings.length ? { warnings } : {}),
  });
}

export interface WebhookServer {
  port: number;
  close(): Promise<void>;
}

/**
 * HTTPS server of the webhooks: POST /validate, and POST /inject when `inject` is given (sidecar
 * injection, src/k8s/inject.ts); AdmissionReview v1 JSON, bounded body, bounded time.
 */
export function startWebhookServer(opts: {
  host: string;
  port: number;
  certPem: string;
  keyPem: string;
  review: (body: unknown) => ReviewResult;
  inject?: (body: unknown) => ReviewResult;
  onLog?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}): Promise<WebhookServer> {
  const server = https.createServer({ cert: opts.certPem, key: opts.keyPem, minVersion: 'TLSv1.2' }, (req, res) => {
    const reply = (code: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const url = new URL(req.url ?? '/', 'https://webhook');
    if (url.pathname === '/healthz' && req.method === 'GET') return reply(200, { status: 'ok' });
    const handler = url.pathname === '/validate' ? opts.review : url.pathname === '/inject' ? opts.inject : undefined;
    if (handler === undefined)
      return reply(404, {
        error: `no such path ${url.pathname}: POST /validate${opts.inject ? ' or /inject' : ''}`,
      });
    if (req.method !== 'POST') return reply(405, { error: 'POST an AdmissionReview' });
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REVIEW_BYTES) {
        tooBig = true;
        reply(413, { error: `body: larger than ${MAX_REVIEW_BYTES} bytes` });
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (tooBig) return;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        return reply(400, { error: `body: not JSON (${(err as Error).message})` });
      }
      let r: ReviewResult;
      try {
        r = handler(body);
      } catch (err) {
        opts.onLog?.('warn', 'admission review failed', { err: (err as Error).message });
        return reply(500, { error: 'internal error while reviewing the object' });
      }
      if (!r.ok) return reply(400, { error: r.error });
      if (!r.review.response.allowed)
        opts.onLog?.('info', 'admission denied', {
          uid: r.review.response.uid,
          message: r.review.response.status?.message,
        });
      reply(200, r.review);
    });
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}

interface WebhookConfiguration {
  metadata: { name: string; resourceVersion?: string };
  webhooks?: Array<{ name: string; clientConfig?: { caBundle?: string; [k: string]: unknown }; [k: string]: unknown }>;
  [k: string]: unknown;
}

/**
 * Puts our root CA into the caBundle of every webhook of a Validating (or Mutating)
 * WebhookConfiguration (the leader does it, so the manifests need no generated certificate).
 * Writes only when it differs. Returns "updated", "unchanged" or "missing" (no such configuration).
 */
export async function ensureWebhookCaBundle(
  client: KubeClient,
  name: string,
  caPem: string,
  kind: 'validating' | 'mutating' = 'validating',
): Promise<'updated' | 'unchanged' | 'missing'> {
  const p = `/apis/admissionregistration.k8s.io/v1/${kind}webhookconfigurations/${encodeURIComponent(name)}`;
  const current = await client.find<WebhookConfiguration>(p);
  if (current === undefined) return 'missing';
  const bundle = Buffer.from(caPem).toString('base64');
  const hooks = current.webhooks ?? [];
  if (hooks.every((w) => w.clientConfig?.caBundle === bundle)) return 'unchanged';
  const next: WebhookConfiguration = {
    ...current,
    webhooks: hooks.map((w) => ({ ...w, clientConfig: { ...(w.clientConfig ?? {}), caBundle: bundle } })),
  };
  await client.replace(p, next);
  return 'updated';
}

export interface AdmissionWebhookOptions {
  host: string;
  port: number;
  /** DNS names / IPs of the serving certificate (the Service name the API server dials). */
  hosts: readonly string[];
  /** ValidatingWebhookConfiguration whose caBundle the leader keeps equal to our root CA ('' = leave it alone). */
  configName: string;
  /** Sidecar injection (POST /inject) and its MutatingWebhookConfiguration ('' = leave it alone). */
  inject?: { options: InjectOptions; configName: string };
  client: KubeClient | undefined;
  /** The CA, once loaded (undefined meanwhile: the webhook starts when it is). */
  ca: () => Pick<CertificateAuthority, 'rootCertPem' | 'issueSync'> | undefined;
  isLeader: () => boolean;
  view: () => ConfigView;
  settings: () => Partial<ModelSettings>;
  now: () => number;
  onLog?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

const WEBHOOK_CERT_DAYS = 365;

/**
 * The webhook's lifecycle: waits for the CA, issues the serving certificate, serves; the leader
 * writes the caBundle (on becoming leader, then every `recheckMs`; every second while it fails,
 * every 10 s while the configuration does not exist).
 */
export class AdmissionWebhook {
  private server: WebhookServer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private bundleOk = false;
  private missing = false;
  private lastBundleCheck = 0;

  constructor(
    private readonly opts: AdmissionWebhookOptions,
    private readonly recheckMs = 300_000,
  ) {}

  get port(): number | undefined {
    return this.server?.port;
  }

  start(): void {
    const tick = (): void => {
      void this.step().finally(() => {
        if (this.stopped) return;
        this.timer = setTimeout(
          tick,
          this.server && this.bundleOk ? Math.min(this.recheckMs, 5000) : this.missing ? 10_000 : 1000,
        );
        this.timer.unref();
      });
    };
    tick();
  }

  /** A leader change: write the caBundle at the next tick. */
  poke(): void {
    this.bundleOk = false;
  }

  private async step(): Promise<void> {
    const ca = this.opts.ca();
    if (ca === undefined) return;
    if (this.server === undefined) {
      const inject = this.opts.inject;
      const r = ca.issueSync(
        { hosts: this.opts.hosts, duration: WEBHOOK_CERT_DAYS * 86_400_000, key: { algo: 'ecdsa', size: 256 } },
        { now: this.opts.now(), field: '--webhook-hosts' },
      );
      if (!r.ok) {
        this.opts.onLog?.('warn', 'cannot issue the webhook certificate', { err: r.error.message });
        return;
      }
      this.server = await startWebhookServer({
        host: this.opts.host,
        port: this.opts.port,
        certPem: r.cert.chainPem,
        keyPem: r.cert.keyPem,
        review: (body) => reviewAdmission(body, this.opts.view(), this.opts.settings()),
        ...(inject ? { inject: (body: unknown) => reviewInjection(body, inject.options) } : {}),
        ...(this.opts.onLog ? { onLog: this.opts.onLog } : {}),
      });
      if (this.stopped) return void (await this.server.close());
      this.opts.onLog?.('info', 'admission webhook serving', {
        port: this.server.port,
        hosts: this.opts.hosts.join(','),
      });
    }
    if (!this.opts.client || !this.opts.isLeader()) return;
    if (this.bundleOk && this.opts.now() - this.lastBundleCheck < this.recheckMs) return;
    const configs: Array<['validating' | 'mutating', string]> = [
      ['validating', this.opts.configName],
      ['mutating', this.opts.inject?.configName ?? ''],
    ];
    let ok = true;
    let missing = false;
    for (const [kind, name] of configs) {
      if (name === '') continue;
      const field = `${kind}WebhookConfiguration`;
      try {
        const r = await ensureWebhookCaBundle(this.opts.client, name, ca.rootCertPem, kind);
        missing ||= r === 'missing';
        ok &&= r !== 'missing';
        if (r === 'updated') this.opts.onLog?.('info', 'webhook caBundle written', { [field]: name });
      } catch (err) {
        ok = false;
        this.opts.onLog?.('warn', 'cannot write the webhook caBundle', { [field]: name, err: (err as Error).message });
      }
    }
    this.lastBundleCheck = this.opts.now();
    this.missing = missing;
    this.bundleOk = ok;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.server?.close();
    this.server = undefined;
  }
}
