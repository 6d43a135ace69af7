// Who a node is: the identity its transport proves (client certificate, bearer token, peer) and
// what its node metadata says (node type, string values).
import type { NodeType } from '../types.js';
import { certUris, type StreamCredentials } from '../node-auth.js';
import type { AnyCall, NodeInfo } from './messages.js';

/** What the transport of `call` proves: verified client certificate, bearer token, peer. */
export function streamCredentials(call: AnyCall): StreamCredentials {
  let peer = '';
  try {
    peer = call.getPeer();
  } catch {
    /* ignore */
  }
  let mtls = false;
  let uris: string[] = [];
  try {
    const auth = call.getAuthContext();
    const cert = auth.sslPeerCertificate;
    // grpc-js only exposes a peer certificate that the server's client CA verified.
    if (cert !== undefined && cert !== null && Object.keys(cert).length > 0) {
      mtls = true;
      uris = certUris(cert);
    }
  } catch {
    /* no TLS */
  }
  const header = call.metadata.get('authorization')[0];
  const m = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return { peer, mtls, certUris: uris, ...(m?.[1] !== undefined ? { bearer: m[1] } : {}) };
}

/** A string value of node metadata (a google.protobuf.Struct, or a plain object). */
export function metadataString(md: unknown, key: string): string | undefined {
  if (typeof md !== 'object' || md === null) return undefined;
  const fields = (md as { fields?: unknown }).fields;
  if (typeof fields === 'object' && fields !== null) {
    const v = (fields as Record<string, unknown>)[key] as { stringValue?: unknown; string_value?: unknown } | undefined;
    const s = v?.stringValue ?? v?.string_value;
    if (typeof s === 'string') return s;
  }
  const direct = (md as Record<string, unknown>)[key];
  return typeof direct === 'string' ? direct : undefined;
}

/** Metadata `OXDS_NODE_TYPE` ("grpc"|"envoy") wins; else a user agent starting with "gRPC" is proxyless gRPC. */
export function detectNodeType(node: NodeInfo | null | undefined): NodeType {
  const explicit = metadataString(node?.metadata, 'OXDS_NODE_TYPE')?.trim().toLowerCase();
  if (explicit === 'grpc' || explicit === 'envoy') return explicit;
  return /^grpc/i.test(node?.userAgentName ?? '') ? 'grpc' : 'envoy';
}

/** NAMESPACE / SERVICE_ACCOUNT of a node's metadata (Istio's keys, or camelCase). */
export function nodeIdentity(node: NodeInfo): { namespace: string; serviceAccount: string } | undefined {
  const pick = (...keys: string[]): string | undefined => {
    for (const k of keys) {
      const v = metadataString(node.metadata, k);
      if (v !== undefined && v !== '') return v;
    }
    return undefined;
  };
  const namespace = pick('NAMESPACE', 'namespace');
  const serviceAccount = pick('SERVICE_ACCOUNT', 'serviceAccount', 'service_account');
  return namespace !== undefined && serviceAccount !== undefined ? { namespace, serviceAccount } : undefined;
}
