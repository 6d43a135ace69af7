#!/usr/bin/env node
// `otoroshi-xds serve | translate | validate | import | bootstrap | status | ca show | ca issue`
import fs from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_ADMIN_URL, runStatus } from './status-command.js';
import { OPTIONS, resolveConfig, translateOptionsFrom, type Config } from './config.js';
import { loadConfigDir } from './sources/yaml.js';
import { compile, formatError, type Compiled } from './pipeline.js';
import { ENVOY_HOWTO, lookupEnvoy } from './envoy/find-envoy.js';
import { envoyRejectionErrors, setToJson } from './xds/blame.js';
// main.js (the server: gRPC, fastify, the Kubernetes client, ...), the import and ca commands and
// `validate --envoy` are imported by the commands that need them only: `translate` and `validate` of
// an empty directory would pay for them at start-up.
const server = (): Promise<typeof import('./main.js')> => import('./main.js');
import { CertManager } from './ca/manager.js';
import { CertificateAuthority } from './ca/ca.js';
import type { BuildResult, ConfigError } from './model/types.js';
import {
  GATEWAY_DEFAULTS,
  SIDECAR_DEFAULTS,
  gatewayBootstrapYaml,
  parseHostPort,
  sidecarBootstrapYaml,
} from './envoy/bootstrap.js';

/** translate / validate: Certificate CRs checked as the server would issue them, with placeholder PEM (deterministic output). */
function dryRunCa(): (built: BuildResult) => void {
  let m: CertManager | undefined;
  return (built) => {
    m ??= new CertManager({ ca: CertificateAuthority.create(), dryRun: true });
    m.materialize(built);
  };
}

/** validate --envoy: Certificate CRs really issued by an in-memory CA, so that Envoy can parse them. */
function realCa(): (built: BuildResult) => void {
  const m = new CertManager({ ca: CertificateAuthority.create(), syncBudgetMs: 10 * 60_000 });
  return (built) => void m.materialize(built);
}

/** Envoy's verdict on the compiled config, as errors naming the objects. */
async function checkWithEnvoy(bin: string, c: Compiled): Promise<ConfigError[]> {
  const { envoyValidate } = await import('./envoy/validate-envoy.js');
  const verdict = await envoyValidate(bin, setToJson(c.envoy.set));
  return verdict.ok ? [] : envoyRejectionErrors(verdict.message, c.envoy.set, c.model);
}

function configFrom(flags: Record<string, unknown>): Config {
  const r = resolveConfig(flags, process.env);
  if (!r.ok) {
    for (const e of r.errors) process.stderr.write(`otoroshi-xds: ${e}\n`);
    process.exit(2);
  }
  return r.value;
}

function addOptions(cmd: Command, keys: ReadonlyArray<keyof Config>): Command {
  for (const o of OPTIONS) {
    if (!keys.includes(o.key)) continue;
    const opt = new Option(
      `--${o.flag} <${o.kind === 'string' ? 'value' : 'n'}>`,
      `${o.description} (env ${o.env}${o.default !== undefined ? `, default ${o.default}` : ''})`,
    );
    cmd.addOption(opt);
  }
  return cmd;
}

type Flags = Record<string, string | number | boolean | undefined>;

/** The `--xds-tls-*` flags of the bootstrap commands, as the bootstrap's TLS file options (set ones only). */
function xdsTlsFlags(f: Flags): Record<string, string> {
  if ((f.xdsTlsCert === undefined) !== (f.xdsTlsKey === undefined))
    program.error('--xds-tls-cert and --xds-tls-key go together');
  const files: Record<string, unknown> = {
    caFile: f.xdsTlsCa,
    certFile: f.xdsTlsCert,
    keyFile: f.xdsTlsKey,
    serverName: f.xdsTlsServerName,
  };
  return Object.fromEntries(Object.entries(files).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

const program = new Command('otoroshi-xds').description(
  "Otoroshi's API-management model as an Envoy xDS control plane",
);

addOptions(
  program.command('serve').description('watch the config and serve xDS (and, later, ext_authz and the admin API)'),
  OPTIONS.map((o) => o.key),
).action(async (flags: Record<string, unknown>) => {
  const config = configFrom(flags);
  const { makeLogger, startServer } = await server();
  const logger = makeLogger(config.logLevel);
  const running = await startServer(config, logger).catch((err: unknown) => {
    logger.fatal({ err }, 'cannot start');
    process.exit(1);
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    void running.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
});

const TRANSLATE_KEYS: ReadonlyArray<keyof Config> = [
  'configDir',
  'envoyHttpPort',
  'envoyHttpsPort',
  'envoyListenAddress',
  'host',
  'authzPort',
  'envoyAuthz',
  'envoyAuthzAddress',
  'envoyAuthzPort',
  'authzTimeoutMs',
  'authzFailMode',
  'envoyAlsCluster',
  'authzTlsCert',
  'authzTlsKey',
  'envoyAuthzCa',
  'envoyAuthzSni',
];

addOptions(
  program
    .command('translate')
    .description('print the Envoy resources the server would send, as proto3 JSON; exits 1 when the config is invalid')
    .addOption(
      new Option('--node-type <type>', 'which client the resources are for')
        .choices(['envoy', 'grpc'])
        .default('envoy'),
    )
    .addOption(new Option('--format <format>', 'output format').choices(['json', 'yaml']).default('json')),
  TRANSLATE_KEYS,
).action(async (flags: Record<string, unknown>) => {
  const config = configFrom(flags);
  const view = await loadConfigDir(config.configDir);
  const authzCa =
    config.authzTlsCert !== undefined ? fs.readFileSync(config.envoyAuthzCa ?? config.authzTlsCert, 'utf8') : undefined;
  const c = compile(view, {}, translateOptionsFrom(config, config.authzPort, authzCa), dryRunCa());
  const set = flags.nodeType === 'grpc' ? c.grpc.set : c.envoy.set;
  const json = setToJson(set);
  const yaml = flags.format === 'yaml' ? (await import('yaml')).default : undefined;
  process.stdout.write(yaml ? yaml.stringify(json) : `${JSON.stringify(json, null, 2)}\n`);
  const errs = c.errors.filter((e) => e.severity === 'error');
  for (const e of c.errors) process.stderr.write(`${formatError(e)}\n`);
  process.exitCode = errs.length ? 1 : 0;
});

addOptions(
  program
    .command('validate')
    .description('check every object; print each problem with file, document, object and field')
    .addOption(
      new Option(
        '--envoy [path]',
        'also hand the translated config to the real Envoy (envoy --mode validate; default binary: $OXDS_ENVOY_BIN, .cache/envoy, PATH)',
      ),
    ),
  TRANSLATE_KEYS,
).action(async (flags: Record<string, unknown>) => {
  const config = configFrom(flags);
  const view = await loadConfigDir(config.configDir);
  const withEnvoy = flags.envoy !== undefined;
  const envoy = withEnvoy ? lookupEnvoy(typeof flags.envoy === 'string' ? flags.envoy : undefined) : undefined;
  if (envoy && 'missing' in envoy) {
    process.stderr.write(`otoroshi-xds: --envoy: ${envoy.missing}; ${ENVOY_HOWTO}\n`);
    process.exitCode = 2;
    return;
  }
  // Envoy parses certificates: with --envoy they are really issued (by a throw-away CA).
  const c = envoy
    ? compile(view, {}, translateOptionsFrom(config, config.authzPort), realCa())
    : compile(view, {}, {}, dryRunCa());
  const errors = envoy ? [...c.errors, ...(await checkWithEnvoy(envoy.bin, c))] : c.errors;
  for (const e of errors) process.stdout.write(`${formatError(e)}\n`);
  const errs = errors.filter((e) => e.severity === 'error').length;
  const warns = errors.filter((e) => e.severity === 'warning').length;
  const notices = errors.length - errs - warns;
  process.stdout.write(
    `${c.statuses.length} objects, ${errs} error(s), ${warns} warning(s)${notices > 0 ? `, ${notices} notice(s)` : ''}${withEnvoy ? ', checked by Envoy' : ''}\n`,
  );
  process.exitCode = errs ? 1 : 0;
});

program
  .command('import')
  .description(
    'convert an Otoroshi JSON export (/api/otoroshi.json, Otoroshi 1.4 or 1.5) into proxy.otoroshi.io YAML, one document per entity; what is not carried over goes to stderr',
  )
  .argument('<file>', 'the export (.json)')
  .option('--namespace <ns>', 'metadata.namespace of every object (default: none, the namespace kubectl applies to)')
  .option('--out <file>', 'write the YAML there instead of stdout')
  .action(async (file: string, flags: { namespace?: string; out?: string }) => {
    const { runImport } = await import('./import/cli.js');
    process.exitCode = await runImport(file, flags, process.stdout, process.stderr);
  });

function parseIntervalMs(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 100)
    throw new InvalidArgumentError('expected an integer number of milliseconds >= 100');
  return n;
}

program
  .command('status')
  .description(
    "connected proxies and their xDS sync state per type (like istioctl proxy-status), read from a running server's admin API",
  )
  .addOption(
    new Option('--admin <url>', `admin API of the server (env OXDS_ADMIN_URL, default ${DEFAULT_ADMIN_URL})`)
      .env('OXDS_ADMIN_URL')
      .default(DEFAULT_ADMIN_URL),
  )
  .addOption(new Option('--watch', 'redraw the table every --interval until Ctrl-C').default(false))
  .addOption(
    new Option('--interval <ms>', 'refresh period of --watch, in milliseconds (default 2000)')
      .argParser(parseIntervalMs)
      .default(2000),
  )
  .action(async (flags: { admin: string; watch: boolean; interval: number }) => {
    process.exitCode = await runStatus({
      admin: flags.admin,
      watch: flags.watch,
      intervalMs: flags.interval,
      out: process.stdout,
      err: process.stderr,
    });
  });

const caCmd = program
  .command('ca')
  .description('the certificate authority: show it, or issue a certificate from a csr');
addOptions(
  caCmd
    .command('show')
    .description('print the CA certificates (PEM), their subjects, fingerprints and expiry; never the keys'),
  ['dataDir', 'caCert', 'caKey', 'caRootCert'],
).action(async (flags: Record<string, unknown>) => {
  const config = configFrom(flags);
  const ca = await (await import('./stages/ca.js')).loadCertificateAuthority(config);
  process.exitCode = (await import('./ca/cli.js')).runCaShow(ca, process.stdout);
  ca.pool.close();
});
addOptions(
  caCmd
    .command('issue')
    .description(
      'issue a certificate from a csr (YAML/JSON: a csr block, a Certificate spec, or a whole Certificate CR) and print cert, chain and key as PEM',
    )
    .requiredOption('--csr <file>', 'the csr file')
    .option(
      '--out-dir <dir>',
      'write tls.crt, tls.key, cert.crt, ca.crt, ca-chain.crt there (0600) instead of printing',
    ),
  ['dataDir', 'caCert', 'caKey', 'caRootCert'],
).action(async (flags: Record<string, unknown>) => {
  const config = configFrom(flags);
  const ca = await (await import('./stages/ca.js')).loadCertificateAuthority(config);
  const { runCaIssue } = await import('./ca/cli.js');
  process.exitCode = await runCaIssue(
    ca,
    { csrFile: String(flags.csr), ...(typeof flags.outDir === 'string' ? { outDir: flags.outDir } : {}) },
    process.stdout,
    process.stderr,
  );
  ca.pool.close();
});

function parseAdminPort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number 0-65535');
  return n;
}

function parseXdsAddress(value: string): string {
  const r = parseHostPort(value);
  if (typeof r === 'string') throw new InvalidArgumentError(r);
  return value;
}

const bootstrapCmd = program
  .command('bootstrap')
  .description('print a ready Envoy bootstrap (YAML) for this control plane');
bootstrapCmd
  .command('gateway')
  .description('an edge gateway: ADS to the control plane, everything else over xDS')
  .requiredOption('--xds-address <host:port>', "where the control plane's --xds-port is reachable", parseXdsAddress)
  .option('--node-id <id>', 'unique per Envoy (node.id)', GATEWAY_DEFAULTS.nodeId)
  .option('--node-cluster <name>', 'node.cluster', GATEWAY_DEFAULTS.nodeCluster)
  .option('--admin-address <addr>', 'Envoy admin bind address', GATEWAY_DEFAULTS.adminAddress)
  .option(
    '--admin-port <n>',
    'Envoy admin port (0: any free port; see envoy --admin-address-path)',
    parseAdminPort,
    GATEWAY_DEFAULTS.adminPort,
  )
  .option('--delta', 'incremental (Delta) ADS (default)')
  .option('--sotw', 'state-of-the-world ADS')
  .option('--xds-tls-ca <file>', 'TLS to the control plane: CA bundle (PEM) that signed its certificate')
  .option('--xds-tls-cert <file>', 'mTLS to the control plane: client certificate (PEM)')
  .option('--xds-tls-key <file>', 'mTLS to the control plane: client key (PEM)')
  .addOption(
    new Option(
      '--xds-token <token>',
      'a gateway token the server accepts (its --gateway-token): sent as authorization: Bearer on the xDS stream',
    ).env('OXDS_GATEWAY_TOKEN'),
  )
  .option(
    '--xds-tls-server-name <name>',
    "name checked in the control plane's certificate and sent as SNI (default: the xDS host)",
  )
  .action((f: Record<string, string | number | boolean | undefined>) => {
    if (f.delta === true && f.sotw === true) program.error('--delta and --sotw exclude each other');
    const tls = xdsTlsFlags(f);
    const str = (k: string): string | undefined => (typeof f[k] === 'string' ? (f[k] as string) : undefined);
    process.stdout.write(
      gatewayBootstrapYaml({
        xdsAddress: String(f.xdsAddress),
        nodeId: String(f.nodeId),
        nodeCluster: String(f.nodeCluster),
        adminAddress: String(f.adminAddress),
        adminPort: Number(f.adminPort),
        delta: f.sotw !== true,
        ...(Object.keys(tls).length > 0 ? { tls } : {}),
        ...(str('xdsToken') !== undefined ? { token: str('xdsToken') } : {}),
      }),
    );
  });

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('expected a port 1-65535');
  return n;
}

function parseProxyPort(value: string): number {
  return value === '0' ? 0 : parsePort(value);
}

bootstrapCmd
  .command('sidecar')
  .description(
    "a workload's sidecar: inbound mTLS listener and outbound listeners, scoped to its workload (docs/mesh.md)",
  )
  .requiredOption('--xds-address <host:port>', "where the control plane's --xds-port is reachable", parseXdsAddress)
  .requiredOption('--namespace <ns>', "the workload's namespace")
  .requiredOption('--service-account <sa>', "the workload's ServiceAccount")
  .option('--node-id <id>', 'unique per Envoy (default sidecar~<namespace>~<service-account>)')
  .option('--app-port <n>', 'port of the application on 127.0.0.1', parsePort, SIDECAR_DEFAULTS.appPort)
  .option('--inbound-port <n>', 'inbound mTLS listener port', parsePort, SIDECAR_DEFAULTS.inboundPort)
  .option('--inbound-address <addr>', 'inbound listener bind address', SIDECAR_DEFAULTS.inboundAddress)
  .option('--outbound-port <n>', 'listener for intercepted outbound traffic', parsePort, SIDECAR_DEFAULTS.outboundPort)
  .option(
    '--proxy-port <n>',
    'explicit HTTP proxy port on 127.0.0.1 (0: none)',
    parseProxyPort,
    SIDECAR_DEFAULTS.proxyPort,
  )
  .option(
    '--admin-port <n>',
    'Envoy admin port on 127.0.0.1 (0: any free port)',
    parseAdminPort,
    SIDECAR_DEFAULTS.adminPort,
  )
  .option('--sotw', 'state-of-the-world ADS (default: Delta)')
  .option('--xds-tls-ca <file>', 'TLS to the control plane: CA bundle (PEM) that signed its certificate')
  .option('--xds-tls-cert <file>', "mTLS to the control plane: the workload's client certificate (PEM)")
  .option('--xds-tls-key <file>', "mTLS to the control plane: the workload's client key (PEM)")
  .option('--xds-tls-server-name <name>', "name checked in the control plane's certificate and sent as SNI")
  .option('--xds-token <token>', 'sent as authorization: Bearer on the xDS stream')
  .action((f: Record<string, string | number | boolean | undefined>) => {
    const tls = xdsTlsFlags(f);
    const str = (k: string): string | undefined => (typeof f[k] === 'string' ? (f[k] as string) : undefined);
    process.stdout.write(
      sidecarBootstrapYaml({
        xdsAddress: String(f.xdsAddress),
        namespace: String(f.namespace),
        serviceAccount: String(f.serviceAccount),
        ...(str('nodeId') !== undefined ? { nodeId: str('nodeId') } : {}),
        appPort: Number(f.appPort),
        inboundPort: Number(f.inboundPort),
        inboundAddress: String(f.inboundAddress),
        outboundPort: Number(f.outboundPort),
        proxyPort: Number(f.proxyPort),
        adminPort: Number(f.adminPort),
        delta: f.sotw !== true,
        ...(Object.keys(tls).length > 0 ? { tls } : {}),
        ...(str('xdsToken') !== undefined ? { token: str('xdsToken') } : {}),
      }),
    );
  });

await program.parseAsync(process.argv);
