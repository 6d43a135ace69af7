// Hostile config input: random and mutated CRDs, Ingress annotations and YAML text through the
// whole pure pipeline (parseYamlFile → assembleView → buildModel → translate → validateSet →
// buildSnapshot). Properties: nothing throws; every published resource passes Envoy's validation
// again and the snapshot is consistent (no dangling reference, so the cache would accept it);
// every error names its object (kind + name) or its file.
// FUZZ_RUNS=<n> multiplies the cases (scripts/fuzz-nightly.mjs); FUZZ_SEED=<seed> replays a failure.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import YAML from 'yaml';
import { assembleView, parseYamlFile } from '../src/sources/yaml.js';
import { compile, type Compiled } from '../src/pipeline.js';
import { validateResource } from '../src/xds/validate.js';
import { buildSnapshot, checkConsistency } from '../src/xds/snapshot.js';
import { TYPE_URLS, type ResourceKind } from '../proto/loader.js';
import { RESOURCE_SET_KEYS } from '../src/xds/types.js';
import { ANNOTATIONS, ANNOTATION_PREFIXES } from '../src/model/ingress.js';
import type { ConfigError } from '../src/model/types.js';
import { editText, hostileValue, mutate, mutationArb, params, seedDocuments, textEditArb } from './helpers/fuzz.js';

const SEEDS = seedDocuments();
const OPTS = {
  listenAddress: '0.0.0.0',
  httpPort: 8080,
  httpsPort: 8443,
  authz: { address: '127.0.0.1', port: 18001, timeoutMs: 200, failureModeAllow: false },
};

/** The properties every compile must satisfy; returns the violations (empty = fine). */
function violations(c: Compiled): string[] {
  const out: string[] = [];
  for (const [nodeType, compiled] of [
    ['envoy', c.envoy],
    ['grpc', c.grpc],
  ] as const) {
    for (const kind of Object.keys(RESOURCE_SET_KEYS) as ResourceKind[]) {
      for (const obj of compiled.set[RESOURCE_SET_KEYS[kind]]) {
        const r = validateResource(TYPE_URLS[kind], obj);
        if (!r.ok)
          out.push(
            `${nodeType} ${kind} published but invalid: ${r.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
          );
      }
    }
    const snap = buildSnapshot(nodeType, 'v', compiled.set);
    for (const p of checkConsistency(snap))
      out.push(`${nodeType} snapshot inconsistent (the cache would refuse the whole config): ${p}`);
  }
  for (const e of c.errors) {
    if (!namesSomething(e)) out.push(`error without an object or file: ${JSON.stringify(e)}`);
  }
  return out;
}

function namesSomething(e: ConfigError): boolean {
  return (
    (typeof e.kind === 'string' && e.kind !== '' && typeof e.name === 'string' && e.name !== '') ||
    (typeof e.file === 'string' && e.file !== '')
  );
}

function compileText(files: Array<[string, string]>): Compiled {
  const parsed = files.map(([rel, text]) => ({ relPath: rel, ...parseYamlFile(rel, text, 0) }));
  return compile(assembleView(parsed), { secretSeed: 'fuzz-seed' }, OPTS);
}

function check(files: Array<[string, string]>): void {
  let c: Compiled;
  try {
    c = compileText(files);
  } catch (err) {
    throw new Error(`compile threw: ${(err as Error).stack ?? String(err)}`);
  }
  const v = violations(c);
  if (v.length > 0) throw new Error(v.slice(0, 5).join('\n'));
}

const toYaml = (docs: unknown[]): string =>
  docs.map((d) => YAML.stringify(d, { aliasDuplicateObjects: false })).join('---\n');

const seedIndexes = fc.array(fc.nat({ max: SEEDS.length - 1 }), { minLength: 1, maxLength: 8 });

test('fuzz: the seed corpus itself compiles cleanly by the properties', () => {
  assert.ok(SEEDS.length > 30, `seed corpus too small: ${SEEDS.length}`);
  check([['seeds.yaml', toYaml(SEEDS)]]);
});

test('fuzz: structurally mutated CRDs never throw nor publish an invalid resource', () => {
  fc.assert(
    fc.property(
      seedIndexes,
      fc.array(fc.array(mutationArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 8 }),
      (idx, muts) => {
        const docs = idx.map((i, k) => mutate(SEEDS[i], muts[k % muts.length] ?? []));
        check([['a.yaml', toYaml(docs)]]);
      },
    ),
    params(600),
  );
});

test('fuzz: mutated YAML text (half-written files, stray characters) never throws', () => {
  fc.assert(
    fc.property(seedIndexes, textEditArb, (idx, edits) => {
      const text = editText(toYaml(idx.map((i) => SEEDS[i])), edits);
      check([
        ['b.yaml', text],
        ['c.yaml', toYaml([SEEDS[0]])],
      ]);
    }),
    params(800),
  );
});

const annotationKey = fc.oneof(
  fc.constantFrom(...[...ANNOTATIONS.keys()]),
  fc.constantFrom(
    'unknown',
    'client-config.retries',
    'force-https',
    'targets-load-balancing',
    'public-patterns',
    'additional-headers',
  ),
  fc.string({ maxLength: 12 }),
);
const annotationValue = fc.oneof(
  fc.constantFrom(
    'true',
    'false',
    '0',
    '-1',
    '3',
    '1e9',
    'x',
    '',
    ' , ',
    'a,b',
    '/.*',
    '(',
    '{"a":"b"}',
    'a=b,c',
    'a:b',
    'RoundRobin',
    'Random',
    'IpAddressHash',
    'BestResponseTime',
    'WeightedBestResponseTime',
    '{"ratio":2}',
    'team',
    '[]',
  ),
  fc.string({ maxLength: 30 }),
);

test('fuzz: random Ingress annotations never throw and every problem names the Ingress', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom(...ANNOTATION_PREFIXES), annotationKey, annotationValue), { maxLength: 8 }),
      fc.array(mutationArb, { maxLength: 2 }),
      (anns, muts) => {
        const annotations = Object.fromEntries(anns.map(([p, k, v]) => [`${p}${k}`, v]));
        const ingress = mutate(
          {
            apiVersion: 'networking.k8s.io/v1',
            kind: 'Ingress',
            metadata: {
              name: 'fz',
              namespace: 'default',
              annotations: { 'kubernetes.io/ingress.class': 'otoroshi', ...annotations },
            },
            spec: {
              tls: [{ hosts: ['fz.oto.tools'], secretName: 'fz-tls' }],
              rules: [
                {
                  host: 'fz.oto.tools',
                  http: {
                    paths: [
                      { path: '/', pathType: 'Prefix', backend: { service: { name: 'fz', port: { number: 80 } } } },
                    ],
                  },
                },
              ],
            },
          },
          muts,
        );
        const svc = {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'fz', namespace: 'default' },
          spec: { clusterIP: '10.0.0.9', ports: [{ name: 'http', port: 80 }] },
        };
        check([['ing.yaml', toYaml([ingress, svc])]]);
      },
    ),
    params(600),
  );
});

test('fuzz: random documents of known kinds with hostile specs never throw', () => {
  const kinds = [
    'ServiceDescriptor',
    'ServiceGroup',
    'ApiKey',
    'Certificate',
    'JwtVerifier',
    'GlobalConfig',
    'TcpService',
    'Ingress',
    'Service',
    'Endpoints',
    'Secret',
    'IngressClass',
    'Apikey',
    'Unknown',
  ];
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          apiVersion: fc.constantFrom('proxy.otoroshi.io/v1alpha1', 'v1', 'networking.k8s.io/v1', 'x/y'),
          kind: fc.constantFrom(...kinds),
          metadata: fc.record({
            name: fc.oneof(fc.constantFrom('a', 'b', 'web'), fc.string({ minLength: 1, maxLength: 10 })),
            namespace: fc.constantFrom('default', 'other', ''),
          }),
          spec: fc.dictionary(
            fc.constantFrom(
              'hosts',
              'targets',
              'paths',
              'clientId',
              'clientSecret',
              'authorizedEntities',
              'groups',
              'enabled',
              'chain',
              'privateKey',
              'domain',
              'ports',
              'rules',
              'tls',
              'strategy',
              'algoSettings',
              'source',
              'publicPatterns',
              'root',
              'matchingRoot',
              'redirection',
              'clientConfig',
            ),
            hostileValue,
            { maxKeys: 6 },
          ),
          data: fc.option(
            fc.dictionary(fc.constantFrom('tls.crt', 'tls.key', 'ca.crt'), fc.string({ maxLength: 20 })),
            { nil: undefined },
          ),
        }),
        { minLength: 1, maxLength: 6 },
      ),
      (docs) => check([['r.yaml', toYaml(docs)]]),
    ),
    params(600),
  );
});
