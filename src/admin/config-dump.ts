// What a node was sent, per resource type, as proto3 JSON with key material redacted.
import { toProto3Json } from '../../proto/json.js';
import { kindOfTypeUrl, TYPE_URLS } from '../../proto/loader.js';
import type { NodeStatus } from '../xds/node-status.js';
import type { Snapshot } from '../xds/types.js';

export const REDACTED = '[redacted]';

/** Replaces private keys, HMAC/session secrets and passwords anywhere in a JSON value. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] = /^(privateKey|password|secret|sessionTicketKeys|hmacSecret|clientSecret)$/i.test(k)
        ? REDACTED
        : redact(v);
    }
    return out;
  }
  return value;
}

/**
 * For every stream of the node: per type, the resources it is subscribed to as they are in the
 * current snapshot of its node type, plus the versions sent and ACKed.
 */
export function configDumpFor(
  nodeId: string,
  streams: readonly NodeStatus[],
  snapshotOf: (s: NodeStatus) => Snapshot | undefined,
): unknown {
  const mine = streams.filter((s) => s.nodeId === nodeId);
  if (mine.length === 0) return undefined;
  return {
    node: nodeId,
    streams: mine.map((s) => {
      const snap = snapshotOf(s);
      const types: Record<string, unknown> = {};
      for (const [typeUrl, t] of Object.entries(s.types)) {
        const kind = kindOfTypeUrl(typeUrl);
        if (!kind || !snap) continue;
        const names = t.wildcard ? [...snap.resources[kind].keys()] : t.subscribed;
        const resources = names
          .map((n) => snap.resources[kind].get(n) ?? snap.resolve(kind, n))
          .filter((r) => r !== undefined)
          .map((r) => redact(toProto3Json(TYPE_URLS[kind], r.bytes)));
        types[typeUrl] = { sentVersion: t.sentVersion, ackedVersion: t.ackedVersion, lastNack: t.lastNack, resources };
      }
      return {
        streamId: s.streamId,
        nodeType: s.nodeType,
        streamKind: s.streamKind,
        connectedAt: s.connectedAt,
        types,
      };
    }),
  };
}
