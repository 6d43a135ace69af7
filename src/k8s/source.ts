// Kubernetes as the config source: one @kubernetes/client-node informer (ListWatch) per watched
// resource and namespace. Same surface as FileSource: start/stop/view, 'change' events.
//
//  * list + watch, resuming from the last resourceVersion when a watch ends (server timeout, a
//    dropped connection); 410 Gone (expired resourceVersion) → relist, and objects that vanished
//    meanwhile are removed (client-node's ListWatch does both);
//  * bookmarks are requested (`allowWatchBookmarks=true`) so resumes start from a recent version;
//  * an error (API server unreachable, 5xx) stops client-node's informer: we restart it with
//    exponential backoff; meanwhile the last objects stay in the view (the last config is served);
//  * writes that only touch `.status` (ours, via the StatusWriter) do not emit 'change': no
//    rebuild loop and no pushes for them.
import { EventEmitter } from 'node:events';
import { clientNode, type ClientNode as k8s } from './client-node.js';
import type { ConfigError, ConfigView, KubeObject, StoredObject } from '../model/types.js';
import { objectKey } from '../model/ids.js';
import { KubeClient, collectionPath, type KubeList, type KubeObjectJson } from './client.js';
import { WATCHED_RESOURCES, type WatchedResource } from './resources.js';
import { applyTemplate, type Templates } from './templates.js';

export interface KubeSourceOptions {
  kubeConfig: k8s.KubeConfig;
  /** Namespaces to watch; `['*']` (default) = cluster-wide. */
  namespaces?: string[];
  /** Label selector applied to the CRDs and Ingresses (Otoroshi's `labels`). */
  labelSelector?: string;
  /** The server ends each watch after this long; we resume from the last resourceVersion. */
  watchTimeoutSeconds?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Resources to watch (default: WATCHED_RESOURCES). */
  resources?: readonly WatchedResource[];
  /** KubernetesConfig `templates`: merged under the spec of each CR of that kind. */
  templates?: Templates;
  /** How long start() waits for the first lists before serving what it has. */
  initialSyncTimeoutMs?: number;
  onLog?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

interface BookmarkWatchClass {
  new (
    config: k8s.KubeConfig,
    extra: Record<string, string>,
    onEvent: () => void,
    keep?: (o: KubeObjectJson) => KubeObjectJson,
  ): k8s.Watch;
}
let bookmarkWatchClass: BookmarkWatchClass | undefined;

/**
 * client-node's Watch, asking for bookmarks and a server-side timeout on every watch request (the class is made on
 * first use: client-node is loaded lazily).
 */
function bookmarkWatch(): BookmarkWatchClass {
  bookmarkWatchClass ??= class BookmarkWatch extends clientNode().Watch {
    constructor(
      config: k8s.KubeConfig,
      private readonly extra: Record<string, string>,
      /** Called on every event (bookmarks included): the watch is healthy. */
      private readonly onEvent: () => void,
      /** Applied to each watched object before the informer caches it. */
      private readonly keep?: (o: KubeObjectJson) => KubeObjectJson,
    ) {
      super(config);
    }
    override watch(
      path: string,
      queryParams: Record<string, string | number | boolean | undefined>,
      callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
      done: (err: unknown) => void,
    ): Promise<AbortController> {
      return super.watch(
        path,
        { ...queryParams, ...this.extra },
        (phase, obj, w) => {
          if (phase !== 'ERROR') this.onEvent();
          const kept =
            this.keep && phase !== 'ERROR' && phase !== 'BOOKMARK' && isObjectJson(obj) ? this.keep(obj) : obj;
          callback(phase, kept, w);
        },
        done,
      );
    }
  };
  return bookmarkWatchClass;
}

interface Feed {
  res: WatchedResource;
  namespace: string | undefined;
  informer: k8s.ListWatch<k8s.KubernetesObject>;
  backoffMs: number;
  restartTimer?: NodeJS.Timeout;
  synced: boolean;
  failing: boolean;
  onFirst?: (() => void) | undefined;
}

const isObjectJson = (o: unknown): o is KubeObjectJson =>
  typeof o === 'object' && o !== null && typeof (o as { metadata?: unknown }).metadata === 'object';

/**
 * What a change is made of, except server bookkeeping and the status (ours, or the API server's),
 * unless the resource keeps only what the model reads: then its status is content (a Pod's IP).
 */
function contentFingerprint(o: KubeObjectJson, withStatus: boolean): string {
  const { status, metadata, ...rest } = o;
  const { resourceVersion: _rv, managedFields: _mf, generation: _g, ...meta } = metadata;
  return JSON.stringify(withStatus ? [rest, meta, status] : [rest, meta]);
}

export class KubeSource extends EventEmitter {
  private readonly client: KubeClient;
  private readonly feeds: Feed[] = [];
  private readonly objects = new Map<string, { so: StoredObject; fp: string }>();
  private readonly firstSeen = new Map<string, number>();
  private seq = 0;
  private stopped = false;
  private announcedSync = false;
  private startReturned = false;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;

  constructor(private readonly opts: KubeSourceOptions) {
    super();
    this.client = new KubeClient(opts.kubeConfig);
    this.backoffInitialMs = opts.backoffInitialMs ?? 500;
    this.backoffMaxMs = opts.backoffMaxMs ?? 30_000;
  }

  private log(level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void {
    this.opts.onLog?.(level, msg, fields);
  }

  /** True once every informer has listed at least once (before that, a build would miss objects). */
  synced(): boolean {
    return this.feeds.length > 0 && this.feeds.every((f) => f.synced);
  }

  /** Resources whose informer is currently failing (API server unreachable, forbidden, ...). */
  failing(): string[] {
    return this.feeds.filter((f) => f.failing).map((f) => `${f.res.plural}${f.namespace ? `@${f.namespace}` : ''}`);
  }

  async start(): Promise<void> {
    this.stopped = false;
    const namespaces =
      this.opts.namespaces && this.opts.namespaces.length > 0 && !this.opts.namespaces.includes('*')
        ? this.opts.namespaces
        : undefined;
    const extra: Record<string, string> = {
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(this.opts.watchTimeoutSeconds ?? 300),
    };
    for (const res of this.opts.resources ?? WATCHED_RESOURCES) {
      const nsList: Array<string | undefined> = res.namespaced && namespaces ? namespaces : [undefined];
      for (const namespace of nsList) this.feeds.push(this.makeFeed(res, namespace, extra));
    }
    // resolved per feed by its first successful list or its first error
    const initial = Promise.all(this.feeds.map((f) => new Promise<void>((resolve) => (f.onFirst = resolve))));
    for (const f of this.feeds) void this.startFeed(f);
    const timeout = this.opts.initialSyncTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([initial, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeout)))]);
    if (timer) clearTimeout(timer);
    this.startReturned = true;
    if (!this.synced())
      this.log('warn', 'kubernetes: not every resource could be listed yet; nothing is published before they are', {
        failing: this.failing(),
      });
  }

  private makeFeed(res: WatchedResource, namespace: string | undefined, extra: Record<string, string>): Feed {
    const path = collectionPath(res.apiVersion, res.plural, namespace);
    const labelSelector = res.userLabels && this.opts.labelSelector ? this.opts.labelSelector : res.labelSelector;
    const feed = {} as Feed;
    const healthy = (): void => {
      if (feed.failing) this.log('info', 'kubernetes: watch recovered', { resource: res.plural, namespace });
      feed.failing = false;
      feed.backoffMs = this.backoffInitialMs;
    };
    const watch = new (bookmarkWatch())(this.opts.kubeConfig, extra, healthy, res.keep);
    const listFn = async (): Promise<k8s.KubernetesListObject<k8s.KubernetesObject>> => {
      const list: KubeList = await this.client.list(path, { labelSelector, fieldSelector: res.fieldSelector });
      // built-in list items carry no kind/apiVersion: restore them (watch events have them)
      for (const item of list.items) {
        item.apiVersion = res.apiVersion;
        item.kind = res.kind;
      }
      if (res.keep) list.items = list.items.map(res.keep);
      feed.synced = true;
      healthy();
      if (!this.announcedSync && this.synced()) {
        // everything listed once, after start() gave up waiting: a first build may now publish
        // (even for an empty cluster, which emits no object events)
        this.announcedSync = true;
        if (this.startReturned) this.emit('change');
      }
      feed.onFirst?.();
      feed.onFirst = undefined;
      return list as unknown as k8s.KubernetesListObject<k8s.KubernetesObject>;
    };
    // The 5th argument (field selector) is sent on the watch too; the list applies it itself.
    const informer = new (clientNode().ListWatch<k8s.KubernetesObject>)(
      path,
      watch,
      listFn,
      false,
      labelSelector,
      res.fieldSelector,
    );
    Object.assign(feed, { res, namespace, informer, backoffMs: this.backoffInitialMs, synced: false, failing: false });
    const upsert = (o: k8s.KubernetesObject): void => this.upsert(res, o as unknown as KubeObjectJson);
    informer.on('add', upsert);
    informer.on('update', upsert);
    informer.on('delete', (o) => this.remove(res, o as unknown as KubeObjectJson));
    informer.on('error', (err: unknown) => this.onFeedError(feed, err));
    return feed;
  }

  private async startFeed(f: Feed): Promise<void> {
    if (this.stopped) return;
    try {
      await f.informer.start();
    } catch (err) {
      this.onFeedError(f, err);
    }
  }

  private onFeedError(f: Feed, err: unknown): void {
    f.onFirst?.();
    f.onFirst = undefined;
    if (this.stopped) return;
    if (!f.failing)
      this.log('warn', 'kubernetes: watch failed; keeping the last objects and retrying', {
        resource: f.res.plural,
        namespace: f.namespace,
        err: (err as Error)?.message ?? String(err),
      });
    f.failing = true;
    if (f.restartTimer) clearTimeout(f.restartTimer);
    const delay = f.backoffMs;
    f.backoffMs = Math.min(this.backoffMaxMs, f.backoffMs * 2);
    // jitter ±20% so replicas do not hammer a recovering API server in step
    const jittered = Math.round(delay * (0.8 + Math.random() * 0.4));
    f.restartTimer = setTimeout(() => {
      f.restartTimer = undefined;
      void this.startFeed(f);
    }, jittered);
    f.restartTimer.unref();
  }

  private upsert(res: WatchedResource, raw: KubeObjectJson): void {
    raw.apiVersion ??= res.apiVersion;
    raw.kind ??= res.kind;
    const object = (this.opts.templates ? applyTemplate(raw, this.opts.templates) : raw) as unknown as KubeObject;
    const key = objectKey(object);
    const fp = contentFingerprint(raw, res.keep !== undefined);
    const prev = this.objects.get(key);
    let seq = this.firstSeen.get(key);
    if (seq === undefined) {
      seq = ++this.seq;
      this.firstSeen.set(key, seq);
    }
    this.objects.set(key, { so: { key, object, origin: { seq } }, fp });
    if (prev?.fp === fp) return; // only status / resourceVersion moved
    this.emit('change');
  }

  private remove(res: WatchedResource, raw: KubeObjectJson): void {
    raw.apiVersion ??= res.apiVersion;
    raw.kind ??= res.kind;
    const key = objectKey(raw as unknown as KubeObject);
    if (!this.objects.delete(key)) return;
    this.firstSeen.delete(key);
    this.emit('change');
  }

  /** Nothing to rescan: the informers push. Kept for the ConfigSource surface. */
  async scan(): Promise<boolean> {
    return false;
  }

  view(): ConfigView {
    const objects = [...this.objects.values()].map((e) => e.so).sort((a, b) => a.origin.seq - b.origin.seq);
    const loadErrors: ConfigError[] = [];
    return { objects, loadErrors };
  }

  stop(): void {
    this.stopped = true;
    for (const f of this.feeds) {
      if (f.restartTimer) clearTimeout(f.restartTimer);
      void f.informer.stop();
    }
    this.feeds.length = 0;
  }
}
