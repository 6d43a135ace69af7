// The snapshot cache: one current snapshot per key, published only when consistent. Keys are node
// types (`envoy`, `grpc`) and, for sidecars, `sidecar|…` keys of Envoy snapshots scoped to one
// workload (src/xds/sidecar/snapshots.ts).
import type { Steps } from '../model/steps.js';
import { checkConsistency, consistencyPrepSteps, diffSnapshotsSteps } from './snapshot.js';
import type { NodeType, Snapshot } from './types.js';

/** Thrown by SnapshotCache.set() for a snapshot that must not be published. */
export class InconsistentSnapshotError extends Error {
  readonly code = 'OXDS_SNAPSHOT_INCONSISTENT';
  constructor(
    readonly nodeType: NodeType,
    readonly version: string,
    readonly problems: readonly string[],
  ) {
    super(
      `inconsistent ${nodeType} snapshot ${version}: ` +
        `${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (+${problems.length - 5} more)` : ''}`,
    );
    this.name = 'InconsistentSnapshotError';
  }
}

/** `envoy`, `grpc`, or a sidecar key (`sidecar|…`, an Envoy snapshot). */
export type SnapshotKey = string;

/** The node type of the snapshots published under `key`. */
export function nodeTypeOfKey(key: SnapshotKey): NodeType {
  return key === 'grpc' ? 'grpc' : 'envoy';
}

export type SnapshotListener = (key: SnapshotKey, snapshot: Snapshot) => void;

export class SnapshotCache {
  private readonly snapshots = new Map<SnapshotKey, Snapshot>();
  private readonly listeners = new Set<SnapshotListener>();

  /**
   * Publishes `snapshot` for `nodeType` and notifies subscribers. Throws InconsistentSnapshotError
   * (keeping the previous snapshot) when checkConsistency() finds problems. No copies are made:
   * snapshots are immutable by contract.
   */
  set(nodeType: SnapshotKey, snapshot: Snapshot): void {
    const problems = checkConsistency(snapshot);
    if (snapshot.nodeType !== nodeTypeOfKey(nodeType))
      problems.unshift(`snapshot built for ${snapshot.nodeType} published as ${nodeType}`);
    if (problems.length > 0) throw new InconsistentSnapshotError(nodeTypeOfKey(nodeType), snapshot.version, problems);
    this.publishChecked(nodeType, snapshot);
  }

  /** Publishes a snapshot already checked consistent, and notifies subscribers. */
  private publishChecked(nodeType: SnapshotKey, snapshot: Snapshot): void {
    if (this.snapshots.get(nodeType) === snapshot) return;
    this.snapshots.set(nodeType, snapshot);
    for (const l of [...this.listeners]) {
      try {
        l(nodeType, snapshot);
      } catch {
        // A subscriber's failure must not stop publication to the others.
      }
    }
  }

  /**
   * Publishes several node types atomically: every snapshot is checked first, and if any is
   * inconsistent none is published (throws the first InconsistentSnapshotError).
   */
  setMany(snapshots: Partial<Record<NodeType, Snapshot>>): void {
    const entries = Object.entries(snapshots) as [NodeType, Snapshot][];
    for (const [nodeType, snapshot] of entries) {
      const problems = checkConsistency(snapshot);
      if (snapshot.nodeType !== nodeType)
        problems.unshift(`snapshot built for ${snapshot.nodeType} published as ${nodeType}`);
      if (problems.length > 0) throw new InconsistentSnapshotError(nodeType, snapshot.version, problems);
    }
    // Checked above: not checked again (the check walks every resource of every snapshot).
    for (const [nodeType, snapshot] of entries) this.publishChecked(nodeType, snapshot);
  }

  /**
   * The walks setMany(snapshots) makes (consistency references, the diff from the current snapshot
   * that subscribers read), done in batches beforehand; publishing stays one synchronous setMany.
   */
  *prepareSteps(snapshots: Partial<Record<NodeType, Snapshot>>): Steps {
    for (const [nodeType, snapshot] of Object.entries(snapshots) as [NodeType, Snapshot][]) {
      yield* consistencyPrepSteps(snapshot);
      const prev = this.snapshots.get(nodeType);
      if (prev !== undefined && prev !== snapshot) yield* diffSnapshotsSteps(prev, snapshot);
    }
  }

  get(nodeType: SnapshotKey): Snapshot | undefined {
    return this.snapshots.get(nodeType);
  }

  /** Forgets the snapshot of a key no stream uses any more (sidecar keys). */
  delete(key: SnapshotKey): void {
    this.snapshots.delete(key);
  }

  /** Current version per node type (for the admin API). */
  versions(): Partial<Record<NodeType, string>> {
    const out: Partial<Record<NodeType, string>> = {};
    for (const [k, s] of this.snapshots) if (k === 'envoy' || k === 'grpc') out[k] = s.version;
    return out;
  }

  /** Calls `listener` after every successful set(); returns the unsubscribe function. */
  subscribe(listener: SnapshotListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}
