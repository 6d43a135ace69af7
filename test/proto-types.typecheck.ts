// Compiled by `npm run build`, never run: each `@ts-expect-error` below must meet a type error,
// else tsc fails ("unused directive"). It proves a misspelt field, a wrong enum name or a wrong
// value type in a builder's output fails the build, inside Any payloads too.
import type {
  Cluster,
  HttpConnectionManager,
  Listener,
  RouteConfiguration,
  envoy_config_core_v3_TransportSocket as TransportSocket,
} from '../proto/envoy-types.js';
import { TYPE_URL } from '../proto/type-urls.js';
import { edsCluster } from '../src/xds/resources/cluster.js';
import { httpConnectionManager } from '../src/xds/resources/hcm.js';

export const cluster: Cluster = {
  name: 'c',
  connectTimeout: { seconds: 1 },
  lbPolicy: 'ROUND_ROBIN',
  // @ts-expect-error a misspelt field (connectTimeout) is not a Cluster field
  connectTimout: { seconds: 1 },
};

// @ts-expect-error an unknown enum name
export const badEnum: Cluster = { lbPolicy: 'ROUND_ROBN' };

// @ts-expect-error a wrong value type (name is a string)
export const badType: Cluster = { name: 42 };

export const socket: TransportSocket = {
  name: 'envoy.transport_sockets.tls',
  // @ts-expect-error a misspelt field inside an Any payload (UpstreamTlsContext.sni)
  typedConfig: { '@type': TYPE_URL.UpstreamTlsContext, snii: 'example.com' },
};

export const listener: Listener = {
  name: 'l',
  filterChains: [
    {
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          // @ts-expect-error an Any whose @type is not a message we build
          typedConfig: { '@type': 'type.googleapis.com/envoy.config.route.v3.Unknown', statPrefix: 'x' },
        },
      ],
    },
  ],
};

// @ts-expect-error a repeated field given one value
export const routes: RouteConfiguration = { virtualHosts: { name: 'v' } };

// Builders' outputs are the generated types: a misspelt read of their result fails too.
// @ts-expect-error HttpConnectionManager has no field statPrefx
export const prefix: unknown = httpConnectionManager('s', 'r').statPrefx;
export const hcm: HttpConnectionManager = httpConnectionManager('s', 'r');
export const eds: Cluster = edsCluster('c', { connectTimeoutMs: 1000, lbPolicy: 'ROUND_ROBIN' });
