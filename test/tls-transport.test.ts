// The one upstream TLS transport builder, as descriptor clusters and TCP service clusters use it:
// one transport socket when every endpoint shares one TLS context, else one match per context with
// the endpoints carrying the matching metadata, plaintext for the others.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { tlsMatchMetadata, upstreamTlsSocket, upstreamTlsTransport } from '../src/xds/resources/cluster.js';
import { tcpCluster } from '../src/xds/resources/tcp.js';
import { validateKind } from '../src/xds/validate.js';
import { TYPE_URL } from '../proto/type-urls.js';

const target = (host: string, tls: boolean) => ({ host, port: 443, tls });

test('one TLS context for every endpoint: one transport socket, no match metadata', () => {
  assert.deepEqual(upstreamTlsTransport([['a.com', { sni: 'a.com' }]], true), {
    transportSocket: {
      name: 'envoy.transport_sockets.tls',
      typedConfig: { '@type': TYPE_URL.UpstreamTlsContext, sni: 'a.com' },
    },
  });
  const c = tcpCluster('t', [target('a.com', true), target('a.com', true)]);
  assert.deepEqual(c.transportSocket, upstreamTlsSocket({ sni: 'a.com' }));
  assert.equal(c.transportSocketMatches, undefined);
  assert.ok(c.loadAssignment?.endpoints?.[0]?.lbEndpoints?.every((e) => e.metadata === undefined));
  assert.ok(validateKind('cluster', c).ok);
});

test('several contexts, or TLS and plaintext endpoints: one match per context, metadata on TLS endpoints', () => {
  assert.equal(upstreamTlsTransport([], true), undefined);
  const mixed = tcpCluster('t', [target('b.com', true), target('a.com', true), target('p.com', false)]);
  assert.equal(mixed.transportSocket, undefined);
  assert.deepEqual(
    mixed.transportSocketMatches?.map((m) => [m.name, m.match]),
    [
      ['a.com', { fields: { oxds_tls: { stringValue: 'a.com' } } }],
      ['b.com', { fields: { oxds_tls: { stringValue: 'b.com' } } }],
    ],
  );
  assert.deepEqual(
    mixed.loadAssignment?.endpoints?.[0]?.lbEndpoints?.map((e) => e.metadata),
    [tlsMatchMetadata('b.com', 'oxds_tls'), tlsMatchMetadata('a.com', 'oxds_tls'), undefined],
  );
  assert.ok(validateKind('cluster', mixed).ok);
  const plaintext = tcpCluster('t', [target('a.com', true)], true);
  assert.equal(plaintext.transportSocket, undefined);
  assert.equal(plaintext.transportSocketMatches, undefined);
});
