// A Delta stream's VHDS subscription (type envoy.config.route.v3.VirtualHost). Envoy subscribes
// each route configuration's name as a namespace (every `<name>/…` virtual host belongs to it)
// and, from the on-demand filter, aliases `<route configuration>/<Host>` for hosts it does not
// hold. A namespace gets all its virtual hosts when the view is eager (else none until asked);
// an alias is answered once with the virtual host it resolves to, carrying the alias (Envoy
// resumes the waiting request when it sees it), or — unknown host — with an empty resource named
// by the alias (Envoy then answers the request itself: 404). Resolved aliases stay subscribed:
// their virtual host keeps being updated, and an unknown host that appears later is sent. A virtual
// host deleted from the view is removed from the client by its name (Envoy keys its virtual hosts
// by name), also when Envoy asked for it under that very name; Envoy keeps the alias subscribed.
// Envoy subscribes an alias again for each request that finds no virtual host (after a removal,
// say) and holds the request until a response carries the alias: every such subscription is
// answered again.
// Envoy's VHDS subscription finishes its initialization (the listener stops warming) only at a
// response touching a name of its namespace; an empty one would leave it waiting for its initial
// fetch timeout (15 s). So the first response removes `<route configuration>/` (never a virtual
// host: domains are not empty) for each route configuration it sends nothing of.
import { deltaMessage } from './encode.js';
import type { VhdsResource, VhdsView } from '../types.js';
import { TYPE_URL } from '../../../proto/type-urls.js';
import { resolveAlias, vhdsDiff, vhdsEntry } from '../vhds.js';

export const VHOST_TYPE_URL = TYPE_URL.VirtualHost;

/** One entry to send: a virtual host (or nothing: unknown alias) under a name, with the aliases it answers. */
interface Outgoing {
  name: string;
  r: VhdsResource | undefined;
  version: string;
  aliases: string[];
}

/** What a response sends and removes; `deferred`: some answer must wait for the next response. */
interface Changes {
  send: Outgoing[];
  removed: string[];
  deferred: boolean;
}

const NO_CHANGES: Changes = { send: [], removed: [], deferred: false };

const byName = (a: Outgoing, b: Outgoing): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export class VhdsSubscription {
  /** Route configuration names subscribed as namespaces. */
  readonly namespaces = new Set<string>();
  /** Aliases asked on demand → answered yet. */
  readonly aliases = new Map<string, boolean>();
  /** What the client holds: name → version. */
  readonly known = new Map<string, string>();
  readonly nonces = new Map<string, string>();
  mustRespond = true;
  /** The view the client's state was last computed against. */
  lastView: VhdsView | undefined;
  /** No response carried a view yet (the first one marks every namespace). */
  private initial = true;
  /** Re-evaluate every virtual host at the next build (new subscription); else only the views' diff. */
  private full = true;
  /** Answered alias → the virtual host it resolved to (undefined: unknown host), as of `lastView`. */
  private readonly targets = new Map<string, string | undefined>();
  /** Virtual host → how many answered aliases resolve to it. */
  private readonly targetCount = new Map<string, number>();

  /**
   * Every route configuration's virtual hosts: Envoy's VHDS subscription matches resources by
   * namespace and names none (its namespace request is empty, and may come after an on-demand
   * one), so it is a wildcard from the start; resources of a namespace Envoy does not watch are
   * ignored by it.
   */
  wildcard = true;

  /** Applies subscribe / unsubscribe lists; returns whether the subscription changed. */
  apply(sub: readonly string[], unsub: readonly string[]): boolean {
    let changed = false;
    for (const n of sub) {
      if (n === '*' && !this.wildcard) this.wildcard = changed = true;
      if (n === '*' || n === '') continue;
      if (n.includes('/')) {
        if (this.aliases.get(n) !== false) {
          this.aliases.set(n, false);
          changed = true;
        }
      } else if (!this.namespaces.has(n)) {
        this.namespaces.add(n);
        changed = true;
      }
    }
    for (const n of unsub) {
      if (n === '*' && this.wildcard) {
        this.wildcard = false;
        changed = true;
      }
      if (this.namespaces.delete(n) || this.aliases.delete(n)) changed = true;
    }
    if (changed) this.full = true;
    return changed;
  }

  /** Subscribed names (for the node status and the name bound). */
  names(): Set<string> {
    return new Set([...this.namespaces, ...this.aliases.keys()]);
  }

  /** What the client must hold on `view`: name → entry (aliases answered now are attached). */
  private desired(view: VhdsView | undefined, version: string): Map<string, Outgoing> {
    const out = new Map<string, Outgoing>();
    if (!view) return out;
    if (view.eager)
      for (const ns of this.wildcard ? view.byConfig.keys() : this.namespaces)
        for (const r of view.byConfig.get(ns) ?? [])
          out.set(r.name, { name: r.name, r, version: r.version, aliases: [] });
    for (const [alias, answered] of this.aliases) {
      const target = resolveAlias(view, alias);
      const r = target === undefined ? undefined : view.vhosts.get(target);
      if (r) {
        const e = out.get(r.name) ?? { name: r.name, r, version: r.version, aliases: [] };
        if (!answered) e.aliases.push(alias);
        out.set(r.name, e);
      } else if (!answered) out.set(alias, { name: alias, r: undefined, version, aliases: [alias] });
    }
    return out;
  }

  /**
   * Every virtual host of interest on `view` against what the client holds. A held virtual host
   * not on the view is removed even when the same name is an alias to answer "unknown" now: a
   * response cannot both remove and add one name, so that answer waits for the next response
   * (`deferred`).
   */
  private fullChanges(view: VhdsView | undefined, version: string): Changes {
    const want = this.desired(view, version);
    const removed: string[] = [];
    for (const n of this.known.keys()) if (want.get(n)?.r === undefined) removed.push(n);
    const send: Outgoing[] = [];
    let deferred = false;
    for (const e of want.values()) {
      if (e.r === undefined && this.known.has(e.name)) deferred = true;
      else if (e.aliases.length > 0 || (e.r && this.known.get(e.name) !== e.version)) send.push(e);
    }
    this.targets.clear();
    this.targetCount.clear();
    if (view)
      for (const a of this.aliases.keys()) {
        const t = resolveAlias(view, a);
        const name = t !== undefined && view.vhosts.has(t) ? t : undefined;
        this.targets.set(a, name);
        if (name !== undefined) this.targetCount.set(name, (this.targetCount.get(name) ?? 0) + 1);
      }
    return { send, removed, deferred };
  }

  /**
   * Only the virtual hosts that changed from `from` to `view` (the diff is computed once for every
   * stream): O(changes) per stream instead of O(virtual hosts). Undefined when an alias now resolves
   * elsewhere (the full evaluation then runs).
   */
  private changesSince(from: VhdsView, view: VhdsView): Changes | undefined {
    if (from === view) return NO_CHANGES;
    const d = vhdsDiff(from, view);
    if (d.changed.size === 0 && d.removed.size === 0) return NO_CHANGES;
    if (this.aliases.size > 0) {
      // A resolution can only change in a route configuration whose virtual hosts (domains) changed.
      const touched = new Set([...d.changed.values(), ...d.removed.values()]);
      for (const a of this.aliases.keys()) {
        if (!touched.has(a.slice(0, a.lastIndexOf('/')))) continue;
        const t = resolveAlias(view, a);
        if ((t !== undefined && view.vhosts.has(t) ? t : undefined) !== this.targets.get(a)) return undefined;
      }
    }
    const send: Outgoing[] = [];
    for (const [n, rc] of d.changed) {
      const wanted = (view.eager && (this.wildcard || this.namespaces.has(rc))) || this.targetCount.has(n);
      const r = wanted ? view.vhosts.get(n) : undefined;
      if (r && this.known.get(n) !== r.version) send.push({ name: n, r, version: r.version, aliases: [] });
    }
    const removed: string[] = [];
    for (const n of d.removed.keys()) if (this.known.has(n)) removed.push(n);
    return { send, removed, deferred: false };
  }

  /**
   * The response bringing the client to `view`, or undefined when it already holds it. `share`
   * returns the encoded entries run of a list of plain entries (no aliases) shared by every stream
   * that sends the same list on this snapshot. `again`: an answer waits for the next response, to
   * be built right after this one.
   */
  build(
    view: VhdsView | undefined,
    version: string,
    nonce: string,
    share?: (key: string, make: () => Buffer) => Buffer,
  ): { buf: Buffer; count: number; again: boolean } | undefined {
    const from = this.lastView;
    const inc = !this.full && from && view && from.eager === view.eager ? this.changesSince(from, view) : undefined;
    const { send, removed, deferred } = inc ?? this.fullChanges(view, version);
    // A deferred answer is found again by the full evaluation of the next build.
    this.full = deferred;
    this.lastView = view;
    const marks = this.initial && view ? namespaceMarks(view, send) : [];
    if (send.length === 0 && removed.length === 0 && marks.length === 0 && !this.mustRespond) return undefined;
    this.mustRespond = false;
    if (view) this.initial = false;
    for (const n of removed) this.known.delete(n);
    for (const e of send) {
      if (e.r) this.known.set(e.name, e.version);
      for (const a of e.aliases) this.aliases.set(a, true);
    }
    send.sort(byName);
    removed.push(...marks);
    removed.sort();
    const make = (): Buffer =>
      concatEntriesOf(send.map((e) => vhdsEntry(e.r, e.name, e.r ? e.version : version, e.aliases)));
    const plain = share !== undefined && send.every((e) => e.aliases.length === 0);
    const run = send.length === 0 ? undefined : plain ? share(JSON.stringify(send.map((e) => e.name)), make) : make();
    return {
      buf: deltaMessage(version, run, VHOST_TYPE_URL, nonce, removed),
      count: this.known.size,
      again: deferred,
    };
  }
}

/** `<route configuration>/` for each route configuration of `view` none of `send` belongs to. */
function namespaceMarks(view: VhdsView, send: readonly Outgoing[]): string[] {
  const sent = new Set(send.map((e) => e.name.slice(0, e.name.lastIndexOf('/'))));
  return [...view.byConfig.keys()].filter((rc) => !sent.has(rc)).map((rc) => `${rc}/`);
}

function concatEntriesOf(parts: Buffer[]): Buffer {
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}
