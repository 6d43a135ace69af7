// The path Envoy routes on is the path ext_authz decides on, proven with real Envoys.
//
// Our gateway (generated HCM: normalize_path, merge_slashes, escaped slashes rejected): for each
// confusing spelling of a path the test records what the user got (status, which backend answered,
// the path that backend received) and the path the Check carried, and asserts that the backend's
// path, the Check's path and normalizeRequestPath() of the raw path are one and the same.
//
// Another mesh's Envoy (a static bootstrap we did not generate: ext_authz pointing at our port, no
// descriptor_id, normalize_path and merge_slashes off): it forwards the raw path, and our decision
// is taken on the normalised one, so a private path spelled as a public one is still refused.
import assert from 'node:assert/strict';
import type { TestContext } from 'vitest';
import { normalizeRequestPath } from '../../src/authz/normalize-path.js';
import type { CheckInput } from '../../src/authz/types.js';
import type { RunningServer } from '../../src/main.js';
import { EnvoyProcess, envoyTest, eventually, httpRequest, startGateway } from '../helpers/envoy.js';
import { startHttpBackend, type HttpBackend } from '../helpers/http-backends.js';

const HOST = 'api.oto.tools';
const PUB_KEY = { 'Otoroshi-Client-Id': 'pub-id', 'Otoroshi-Client-Secret': 'pub-secret' };
const ADMIN_KEY = { 'Otoroshi-Client-Id': 'admin-id', 'Otoroshi-Client-Secret': 'admin-secret' };

const NO_KEY = 'No ApiKey provided';
const NOT_THIS_KEY = 'Invalid API key';
const BAD_PATH = 'Bad request';

function config(pubPort: number, adminPort: number): string {
  return `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: pub, annotations: {otoroshi.io/id: pub}}
spec:
  hosts: [${HOST}]
  forceHttps: false
  publicPatterns: ['/public/.*']
  privatePatterns: ['/public/secret.*']
  targets: [{url: "http://127.0.0.1:${pubPort}"}]
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: admin, annotations: {otoroshi.io/id: admin}}
spec:
  hosts: [${HOST}]
  paths: [/admin]
  forceHttps: false
  targets: [{url: "http://127.0.0.1:${adminPort}"}]
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: pub-key}
spec: {clientId: pub-id, clientSecret: pub-secret, authorizedEntities: [service_pub]}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: admin-key}
spec: {clientId: admin-id, clientSecret: admin-secret, authorizedEntities: [service_admin]}
`;
}

/** Records the input of every Check the server answers (as Envoy sent it, before normalisation). */
function recordChecks(server: RunningServer): CheckInput[] {
  const seen: CheckInput[] = [];
  const az = server.authorizer;
  const check = az.checkNow.bind(az);
  az.checkNow = (input) => {
    seen.push(input);
    return check(input);
  };
  return seen;
}

async function backends(t: TestContext): Promise<{ pub: HttpBackend; admin: HttpBackend }> {
  const pub = await startHttpBackend('pub');
  const admin = await startHttpBackend('admin');
  t.onTestFinished(async () => {
    await Promise.all([pub.stop(), admin.stop()]);
  });
  return { pub, admin };
}

interface Seen {
  status: number;
  /** Otoroshi-Error-Msg, when our deny answered */
  error: string | undefined;
  /** the backend that answered, if any */
  backend: string | undefined;
  /** the path (without query) that backend received */
  backendPath: string | undefined;
  /** the paths carried by the Checks this request caused */
  checked: string[];
}

async function send(
  port: number,
  path: string,
  headers: Record<string, string>,
  checks: CheckInput[],
  bs: HttpBackend[],
): Promise<Seen> {
  checks.length = 0;
  const before = bs.map((b) => b.seen.length);
  const r = await httpRequest({ port, host: HOST, path, headers: { accept: 'application/json', ...headers } });
  const answered = bs.filter((b, i) => b.seen.length > before[i]!);
  assert.ok(answered.length <= 1, `${path}: one backend at most`);
  const b = answered[0];
  return {
    status: r.status,
    error: r.headers['otoroshi-error-msg'] as string | undefined,
    backend: b?.id,
    backendPath: b?.seen.at(-1)?.path.split('?')[0],
    checked: checks.map((c) => c.path),
  };
}

interface Case {
  raw: string;
  key?: Record<string, string>;
  status: number;
  /** Otoroshi-Error-Msg of our deny (none: allowed, or answered by Envoy itself) */
  error?: string;
  /** the backend that answers (allowed requests) */
  backend?: 'pub' | 'admin';
  /** the normalised path: what the backend gets and what we decide on */
  path?: string;
  /** what the backend receives when the route rewrites `path` (admin: its `/admin` prefix is stripped) */
  upstream?: string;
}

// Raw spelling → what the user sees through our gateway.
const GATEWAY_CASES: Case[] = [
  { raw: '/public/ok', status: 200, backend: 'pub', path: '/public/ok' },
  { raw: '/public/ok?next=/../admin', status: 200, backend: 'pub', path: '/public/ok' },
  // /public/secret is private: without a key refused, with the key served as /public/secret
  { raw: '/public/./secret', status: 400, error: NO_KEY, path: '/public/secret' },
  { raw: '/public/./secret', key: PUB_KEY, status: 200, backend: 'pub', path: '/public/secret' },
  { raw: '/public//secret', status: 400, error: NO_KEY, path: '/public/secret' },
  { raw: '/public//secret', key: PUB_KEY, status: 200, backend: 'pub', path: '/public/secret' },
  { raw: '/public/%73ecret', status: 400, error: NO_KEY, path: '/public/secret' },
  { raw: '/public/%73ecret', key: PUB_KEY, status: 200, backend: 'pub', path: '/public/secret' },
  { raw: '/public/a/../secret', status: 400, error: NO_KEY, path: '/public/secret' },
  // dot segments and escapes that lead to /admin: the admin descriptor decides (private there)
  { raw: '/public/../admin', status: 400, error: NO_KEY, path: '/admin' },
  { raw: '/public/../admin', key: PUB_KEY, status: 401, error: NOT_THIS_KEY, path: '/admin' },
  { raw: '/public/../admin', key: ADMIN_KEY, status: 200, backend: 'admin', path: '/admin', upstream: '/' },
  { raw: '//admin', status: 400, error: NO_KEY, path: '/admin' },
  { raw: '//admin', key: ADMIN_KEY, status: 200, backend: 'admin', path: '/admin', upstream: '/' },
  { raw: '/%61dmin', key: PUB_KEY, status: 401, error: NOT_THIS_KEY, path: '/admin' },
  { raw: '/%61dmin', key: ADMIN_KEY, status: 200, backend: 'admin', path: '/admin', upstream: '/' },
  { raw: '/public/%2e%2e/admin', key: ADMIN_KEY, status: 200, backend: 'admin', path: '/admin', upstream: '/' },
  // paths are case-sensitive: /ADMIN is not the admin descriptor's, it is pub's (private there)
  { raw: '/ADMIN', status: 400, error: NO_KEY, path: '/ADMIN' },
  { raw: '/ADMIN', key: PUB_KEY, status: 200, backend: 'pub', path: '/ADMIN' },
  { raw: '/ADMIN', key: ADMIN_KEY, status: 401, error: NOT_THIS_KEY, path: '/ADMIN' },
  // encoded slashes / backslashes cannot be normalised the same everywhere: Envoy answers 400
  { raw: '/public/%2Fsecret', key: PUB_KEY, status: 400 },
  { raw: '/public/%2fsecret', key: PUB_KEY, status: 400 },
  { raw: '/public/%5Csecret', key: PUB_KEY, status: 400 },
];

const describe = (c: Case): string => `${c.raw}${c.key ? ` (key ${c.key['Otoroshi-Client-Id']})` : ''}`;

envoyTest(
  'our gateway: the backend gets, the Check carries and normalizeRequestPath() computes the same path',
  async (t, bin) => {
    const { pub, admin } = await backends(t);
    const gw = await startGateway(t, bin, { files: { 'c.yaml': config(pub.port, admin.port) } });
    const checks = recordChecks(gw.server);
    await eventually('the pub route', async () =>
      (await gw.request({ host: HOST, path: '/public/ok' })).status === 200 ? true : undefined,
    );
    for (const c of GATEWAY_CASES) {
      const what = describe(c);
      const got = await send(gw.httpPort, c.raw, c.key ?? {}, checks, [pub, admin]);
      assert.equal(got.status, c.status, `${what}: status`);
      assert.equal(got.error, c.error, `${what}: Otoroshi-Error-Msg`);
      assert.equal(got.backend, c.backend, `${what}: the backend that answered`);
      if (c.path === undefined) {
        // refused by Envoy before any filter: no Check, no backend; our normaliser refuses it too
        assert.deepEqual(got.checked, [], `${what}: no Check`);
        assert.equal(normalizeRequestPath(c.raw.split('?')[0]!), undefined, `${what}: we would deny it too`);
        continue;
      }
      assert.equal(normalizeRequestPath(c.raw.split('?')[0]!), c.path, `${what}: our normaliser`);
      assert.deepEqual(got.checked, [c.path], `${what}: the Check carries the path Envoy routes on`);
      assert.equal(normalizeRequestPath(got.checked[0]!), c.path, `${what}: nothing left to normalise`);
      if (c.backend !== undefined)
        assert.equal(got.backendPath, c.upstream ?? c.path, `${what}: the path the backend received`);
    }
  },
  { timeout: 180_000 },
);

/** An Envoy we did not configure: ext_authz at our port, one route to `backendPort`, no path normalisation. */
function foreignBootstrap(authzPort: number, backendPort: number): string {
  const cluster = (name: string, port: number, h2: boolean): string => `  - name: ${name}
    type: STATIC
    connect_timeout: 2s
${
  h2
    ? `    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
`
    : ''
}    load_assignment:
      cluster_name: ${name}
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${port}}}}}]}]
`;
  return `admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: foreign
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: foreign
          normalize_path: false
          merge_slashes: false
          path_with_escaped_slashes_action: KEEP_UNCHANGED
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: backend}
          http_filters:
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              failure_mode_allow: false
              grpc_service: {envoy_grpc: {cluster_name: oxds-authz}, timeout: 5s}
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
${cluster('backend', backendPort, false)}${cluster('oxds-authz', authzPort, true)}`;
}

// Raw spelling → what the user sees through the foreign Envoy (which forwards the raw path).
const FOREIGN_CASES: Case[] = [
  { raw: '/public/ok', status: 200, backend: 'pub', path: '/public/ok' },
  // public by its raw spelling, private once normalised: refused
  { raw: '/public/./secret', status: 400, error: NO_KEY, path: '/public/secret' },
  { raw: '/public//secret', status: 400, error: NO_KEY, path: '/public/secret' },
  { raw: '/public/%73ecret', status: 400, error: NO_KEY, path: '/public/secret' },
  { raw: '/public/a/../secret', status: 400, error: NO_KEY, path: '/public/secret' },
  // the admin descriptor (matched on the normalised path) decides: private, the pub key is not enough
  { raw: '/public/../admin', status: 400, error: NO_KEY, path: '/admin' },
  { raw: '/public/../admin', key: PUB_KEY, status: 401, error: NOT_THIS_KEY, path: '/admin' },
  { raw: '//admin', key: PUB_KEY, status: 401, error: NOT_THIS_KEY, path: '/admin' },
  { raw: '/%61dmin', key: PUB_KEY, status: 401, error: NOT_THIS_KEY, path: '/admin' },
  // what cannot be normalised the same way by every proxy is denied by the Check itself
  { raw: '/public/%2Fsecret', status: 400, error: BAD_PATH },
  { raw: '/public/%5Csecret', status: 400, error: BAD_PATH },
  { raw: '/public/%zz', status: 400, error: BAD_PATH },
];

envoyTest(
  'a foreign Envoy (no descriptor_id, normalize_path off): we decide on the normalised path',
  async (t, bin) => {
    const { pub, admin } = await backends(t);
    const gw = await startGateway(t, bin, { files: { 'c.yaml': config(pub.port, admin.port) } });
    const checks = recordChecks(gw.server);
    // every request of the foreign Envoy goes to the pub backend: only our decision stands in between
    const foreign = await EnvoyProcess.start(bin, foreignBootstrap(gw.server.authzPort, pub.port));
    t.onTestFinished(() => foreign.stop());
    await foreign.ready();
    const port = await eventually('the foreign listener', () => foreign.listenerPort('foreign'));
    for (const c of FOREIGN_CASES) {
      const what = `foreign ${describe(c)}`;
      const got = await send(port, c.raw, c.key ?? {}, checks, [pub, admin]);
      assert.equal(got.status, c.status, `${what}: status`);
      assert.equal(got.error, c.error, `${what}: Otoroshi-Error-Msg`);
      assert.equal(got.backend, c.backend, `${what}: the backend that answered`);
      assert.deepEqual(got.checked, [c.raw.split('?')[0]], `${what}: the Check carries the raw path`);
      assert.equal(normalizeRequestPath(got.checked[0]!), c.path, `${what}: the path we decided on`);
      if (c.backend !== undefined) assert.equal(got.backendPath, c.raw, `${what}: forwarded as sent`);
    }
    assert.deepEqual(await foreign.rejected(), {}, 'the foreign Envoy accepted its bootstrap');
  },
  { timeout: 180_000 },
);
