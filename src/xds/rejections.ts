// Objects Envoy rejected (NACK feedback). A NACK whose error_detail traces to objects (see
// blame.ts) leaves those objects out of the next snapshots, with status OXDS_ENVOY_REJECTED, so
// everything else converges. An object comes back as soon as it changes (or is deleted). Bounded:
// only objects in the published snapshot can be blamed, and a left-out object is not in it.
import { originFields } from '../model/ids.js';
import { objectFingerprint } from '../audit.js';
import type { ConfigError, ConfigView, Model, ObjectKey, ObjectStatus } from '../model/types.js';
import type { ResourceSet } from './types.js';
import { blameOwners, ownerObject, setToJson } from './blame.js';

interface Rejection {
  fingerprint: string;
  message: string;
}

/** Longest Envoy message kept in a status. */
const DETAIL_LIMIT = 2000;

export class EnvoyRejections {
  private readonly rejected = new Map<ObjectKey, Rejection>();

  /**
   * Records the objects `detail` (a NACK's error message) traces to in the published `sets`;
   * returns the keys newly left out (empty: nothing traced, nothing changes).
   */
  record(detail: string, sets: readonly ResourceSet[], model: Model, view: ConfigView): ObjectKey[] {
    const owners = new Set(sets.flatMap((s) => blameOwners(detail, setToJson(s))));
    const byKey = new Map(view.objects.map((o) => [o.key, o]));
    const added: ObjectKey[] = [];
    for (const id of owners) {
      const key = ownerObject(model, id)?.sourceKey;
      const stored = key !== undefined ? byKey.get(key) : undefined;
      if (key === undefined || stored === undefined || this.rejected.has(key)) continue;
      this.rejected.set(key, { fingerprint: objectFingerprint(stored), message: detail.slice(0, DETAIL_LIMIT) });
      added.push(key);
    }
    return added;
  }

  /** `view` without the rejected objects (forgetting those that changed or left) and their statuses. */
  filter(view: ConfigView): { view: ConfigView; statuses: ObjectStatus[] } {
    if (this.rejected.size === 0) return { view, statuses: [] };
    const present = new Set<ObjectKey>();
    const statuses: ObjectStatus[] = [];
    const objects = view.objects.filter((o) => {
      const r = this.rejected.get(o.key);
      if (r === undefined) return true;
      present.add(o.key);
      if (r.fingerprint !== objectFingerprint(o)) {
        this.rejected.delete(o.key);
        return true;
      }
      const m = o.object.metadata;
      const error: ConfigError = {
        code: 'OXDS_ENVOY_REJECTED',
        severity: 'error',
        kind: o.object.kind,
        namespace: m.namespace ?? '',
        name: m.name,
        ...originFields(o.origin),
        message: `Envoy rejected the configuration made from this object; left out until it changes: ${r.message}`,
      };
      statuses.push({
        key: o.key,
        kind: o.object.kind,
        namespace: m.namespace ?? '',
        name: m.name,
        origin: o.origin,
        state: 'invalid',
        errors: [error],
      });
      return false;
    });
    for (const k of [...this.rejected.keys()]) if (!present.has(k)) this.rejected.delete(k);
    return { view: { ...view, objects }, statuses };
  }
}
