// The xDS messages as the server decodes them (protobufjs messages: camelCase fields, defaults on
// the prototype) and the gRPC service definitions of ADS and SDS (hand-built on protobufjs codecs;
// the test client uses them too).
import type * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { lookupType } from '../../../proto/loader.js';

export interface NodeInfo {
  id?: string;
  cluster?: string;
  userAgentName?: string;
  userAgentVersion?: string;
  /** google.protobuf.Struct as decoded ({fields: {k: {stringValue}}}) or a plain object. */
  metadata?: unknown;
}

export interface RpcStatus {
  code?: number;
  message?: string;
}

export interface DiscoveryRequest {
  versionInfo: string;
  node?: NodeInfo | null;
  resourceNames: string[];
  typeUrl: string;
  responseNonce: string;
  errorDetail?: RpcStatus | null;
}

export interface DeltaDiscoveryRequest {
  node?: NodeInfo | null;
  typeUrl: string;
  resourceNamesSubscribe: string[];
  resourceNamesUnsubscribe: string[];
  initialResourceVersions: Record<string, string>;
  responseNonce: string;
  errorDetail?: RpcStatus | null;
}

/** google.protobuf.Any as protobufjs's bundled definition names its fields. */
export interface AnyMessage {
  type_url: string;
  value: Uint8Array;
}

export interface DiscoveryResponse {
  versionInfo: string;
  resources: AnyMessage[];
  typeUrl: string;
  nonce: string;
}

export interface DeltaResource {
  name: string;
  version: string;
  resource?: AnyMessage;
}

export interface DeltaDiscoveryResponse {
  systemVersionInfo: string;
  resources: DeltaResource[];
  typeUrl: string;
  removedResources: string[];
  nonce: string;
}

function codec<T>(typeName: string): { serialize: (v: T | Buffer) => Buffer; deserialize: (b: Buffer) => T } {
  let t: protobuf.Type | undefined;
  const type = (): protobuf.Type => (t ??= lookupType(typeName));
  return {
    // A Buffer is an already-encoded message (the server pre-encodes to measure and write once).
    serialize: (v) =>
      Buffer.isBuffer(v)
        ? v
        : Buffer.from(
            type()
              .encode(v as object)
              .finish(),
          ),
    deserialize: (b) => type().decode(b) as unknown as T,
  };
}

function method<Req, Res>(path: string, req: string, res: string, requestStream: boolean, responseStream: boolean) {
  const rq = codec<Req>(req);
  const rs = codec<Res>(res);
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: rq.serialize,
    requestDeserialize: rq.deserialize,
    responseSerialize: rs.serialize,
    responseDeserialize: rs.deserialize,
  };
}

const DISCOVERY = 'envoy.service.discovery.v3';
const ADS_SERVICE = `${DISCOVERY}.AggregatedDiscoveryService`;
const SDS_SERVICE = 'envoy.service.secret.v3.SecretDiscoveryService';

/** A discovery service: one SotW and one Delta bidi method, both on the discovery messages. */
function discoveryService(service: string, sotw: string, delta: string): grpc.ServiceDefinition {
  return {
    [sotw]: method<DiscoveryRequest, DiscoveryResponse>(
      `/${service}/${sotw}`,
      `${DISCOVERY}.DiscoveryRequest`,
      `${DISCOVERY}.DiscoveryResponse`,
      true,
      true,
    ),
    [delta]: method<DeltaDiscoveryRequest, DeltaDiscoveryResponse>(
      `/${service}/${delta}`,
      `${DISCOVERY}.DeltaDiscoveryRequest`,
      `${DISCOVERY}.DeltaDiscoveryResponse`,
      true,
      true,
    ),
  } as unknown as grpc.ServiceDefinition;
}

export function aggregatedDiscoveryServiceDefinition(): grpc.ServiceDefinition {
  return discoveryService(ADS_SERVICE, 'StreamAggregatedResources', 'DeltaAggregatedResources');
}

export function secretDiscoveryServiceDefinition(): grpc.ServiceDefinition {
  return discoveryService(SDS_SERVICE, 'StreamSecrets', 'DeltaSecrets');
}

export type AnyCall = grpc.ServerDuplexStream<unknown, unknown>;
