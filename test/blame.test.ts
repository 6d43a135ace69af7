// Tracing what Envoy rejected back to the objects behind it (NACK feedback, validate --envoy).
import assert from 'node:assert/strict';
import { test } from 'vitest';
import { blameOwners, ownerOfName } from '../src/xds/blame.js';

function set(
  routes: { name: string; regex?: string }[],
  clusters: string[] = [],
): { listeners: unknown[]; routes: unknown[]; clusters: unknown[]; endpoints: unknown[]; secrets: unknown[] } {
  return {
    listeners: [{ name: 'oxds-http' }],
    routes: [
      {
        name: 'oxds-http',
        virtualHosts: [
          {
            name: 'a.oto.tools',
            domains: ['a.oto.tools'],
            routes: routes.map((r) => ({
              name: r.name,
              match: {
                prefix: '/',
                headers: r.regex ? [{ name: 'x', stringMatch: { safeRegex: { regex: r.regex } } }] : [],
              },
            })),
          },
        ],
      },
    ],
    clusters: clusters.map((name) => ({ name })),
    endpoints: [],
    secrets: [],
  };
}

test('blame: generated names carry their owner', () => {
  assert.equal(ownerOfName('oxds~desc-1~abcd1234'), 'desc-1');
  assert.equal(ownerOfName('oxds~desc-1~abcd1234~canary'), 'desc-1');
  assert.equal(ownerOfName('oxds-tcp~tcp-9~r0'), 'tcp-9');
  assert.equal(ownerOfName('oxds-ext-authz'), undefined);
  assert.deepEqual(
    blameOwners('cluster oxds~b~12345678: bad', set([{ name: 'a/all' }], ['oxds~a~11111111', 'oxds~b~12345678'])),
    ['b'],
  );
  assert.deepEqual(blameOwners("route 'b/0' is invalid", set([{ name: 'a/all' }, { name: 'b/0' }])), ['b']);
});

test('blame: a quoted value found in one route blames its descriptor only', () => {
  const s = set([
    { name: 'good/all', regex: 'ok' },
    { name: 'bad/all', regex: '[a-z]{1000}x' },
  ]);
  assert.deepEqual(blameOwners("regex '[a-z]{1000}x' RE2 program size of 40004 > max program size", s), ['bad']);
  // Nothing traced: nobody blamed.
  assert.deepEqual(blameOwners('Unable to parse JSON as proto', s), []);
  // A value every descriptor carries is no trace.
  const many = set(['a', 'b', 'c', 'd'].map((x) => ({ name: `${x}/all`, regex: 'same' })));
  assert.deepEqual(blameOwners("regex 'same' refused", many), []);
});
