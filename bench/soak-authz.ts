// ext_authz soak: the real Check server with Redis quotas (bench/authz.js `serve redis`, its own
// process) driven by h2load at a fixed rate = 70% of the capacity measured first in the same run,
// for SOAK_SECONDS (default 600), in segments of SOAK_SEGMENT_S (default 30 s). Per segment: req/s,
// failures (HTTP level), p50/p99/p99.9 latency, server RSS, and one decoded Check (h2load ignores
// gRPC trailers, so correctness is checked separately: it must be an allow with a counting quota).
// Pass criteria: no error, RSS growth ≤ 10% from the first segment, p99 stable.
//   npm run build && node dist/bench/soak-authz.js [--seconds 600] [--segment 30] [--load 0.7]
// Writes bench/results/soak-authz.json. Needs h2load (nghttp2-client) and redis-server.
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startRedis } from '../test/helpers/redis.js';
import * as grpc from '@grpc/grpc-js';
import { lookupType, TO_OBJECT_OPTIONS } from '../proto/loader.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : (process.env[`SOAK_${name.toUpperCase()}`] ?? def);
}

async function startServer(redisUrl: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(here, 'authz.js'), 'serve', 'redis', String(port), redisUrl], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error('server did not start')), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY')) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  return { child, port };
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Segment {
  t: number;
  seconds: number;
  reqPerSec: number;
  succeeded: number;
  failed: number;
  errored: number;
  p50us: number;
  p99us: number;
  p999us: number;
  serverRssMB: number;
  check: string;
}

function h2load(
  port: number,
  bodyFile: string,
  o: { seconds: number; c: number; m: number; rps?: number },
): Omit<Segment, 't' | 'serverRssMB' | 'check'> {
  const log = path.join(os.tmpdir(), `oxds-soak-h2load-${process.pid}.log`);
  fs.rmSync(log, { force: true });
  const args = [
    `-c${o.c}`,
    `-m${o.m}`,
    '-t1',
    '-D',
    `${o.seconds}`,
    '--warm-up-time=1',
    '-d',
    bodyFile,
    '-H',
    'content-type: application/grpc',
    '-H',
    'te: trailers',
    `--log-file=${log}`,
  ];
  if (o.rps) args.push(`--rps=${o.rps}`);
  args.push(`http://127.0.0.1:${port}${CHECK_PATH}`);
  const r = spawnSync('h2load', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`h2load failed: ${r.stderr}\n${r.stdout}`);
  const rps = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(r.stdout);
  const reqs = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(
    r.stdout,
  );
  const lat = fs
    .readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => Number(l.split('\t')[2]))
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  fs.rmSync(log, { force: true });
  return {
    seconds: o.seconds,
    reqPerSec: Number(rps?.[1] ?? 0),
    succeeded: Number(reqs?.[4] ?? 0),
    failed: Number(reqs?.[5] ?? 0),
    errored: Number(reqs?.[6] ?? 0),
    p50us: pct(lat, 50),
    p99us: pct(lat, 99),
    p999us: pct(lat, 99.9),
  };
}

function verify(port: number, body: Buffer): Promise<string> {
  const CheckResponse = lookupType('envoy.service.auth.v3.CheckResponse');
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const id = (b: Buffer): Buffer => b;
  return new Promise((resolve) => {
    client.makeUnaryRequest(CHECK_PATH, id, id, body, { deadline: Date.now() + 5000 }, (err, res) => {
      client.close();
      if (err) return resolve(`ERROR ${err.code} ${err.details}`);
      const r = CheckResponse.toObject(CheckResponse.decode(res!), TO_OBJECT_OPTIONS) as {
        status?: { code?: number };
        okResponse?: { responseHeadersToAdd?: Array<{ header: { key: string; value: string } }> };
      };
      if ((r.status?.code ?? 0) !== 0 || !r.okResponse)
        return resolve(`NOT AN ALLOW ${JSON.stringify(r).slice(0, 200)}`);
      const rem = r.okResponse.responseHeadersToAdd?.find(
        (h) => h.header.key.toLowerCase() === 'otoroshi-daily-calls-remaining',
      );
      resolve(`allow ${rem ? rem.header.value : '?'}`);
    });
  });
}

/** Soak segments at `perClient` × 4 req/s until `total` seconds have passed; each ends with a real Check. */
async function soak(o: {
  port: number;
  pid: number;
  bodyFile: string;
  body: Buffer;
  total: number;
  segment: number;
  perClient: number;
  out: Record<string, unknown>;
}): Promise<{ segments: Segment[]; ran: number }> {
  const { port, pid, bodyFile, body, total, segment, perClient, out } = o;
  const segments: Segment[] = [];
  const t0 = Date.now();
  const deadline = t0 + total * 1000;
  while (Date.now() < deadline - 2000) {
    const secs = Math.min(segment, Math.ceil((deadline - Date.now()) / 1000));
    const s = h2load(port, bodyFile, { seconds: secs, c: 4, m: 8, rps: perClient });
    const seg: Segment = {
      t: Math.round((Date.now() - t0) / 1000),
      ...s,
      serverRssMB: rssKb(pid) / 1024,
      check: await verify(port, body),
    };
    segments.push(seg);
    console.log(
      `  t=${String(seg.t).padStart(4)} s  ${seg.reqPerSec.toFixed(0)} req/s  ` +
        `failed ${seg.failed} errored ${seg.errored}  ` +
        `p50 ${seg.p50us} µs p99 ${seg.p99us} µs p99.9 ${seg.p999us} µs  ` +
        `RSS ${seg.serverRssMB.toFixed(1)} MiB  check: ${seg.check}`,
    );
    fs.writeFileSync(
      path.join(repo, 'bench', 'results', 'soak-authz.partial.json'),
      `${JSON.stringify({ ...out, segments }, null, 2)}\n`,
    );
  }
  return { segments, ran: (Date.now() - t0) / 1000 };
}

function soakSummary(segments: Segment[], ran: number) {
  const first = segments[0];
  const last = segments[segments.length - 1];
  const failures =
    segments.reduce((n, s) => n + s.failed + s.errored, 0) +
    segments.filter((s) => !s.check.startsWith('allow')).length;
  const rssGrowth = first && last ? (last.serverRssMB - first.serverRssMB) / first.serverRssMB : NaN;
  const p99s = segments.map((s) => s.p99us);
  const summary = {
    ranSeconds: ran,
    requests: segments.reduce((n, s) => n + s.succeeded, 0),
    failures,
    rssFirstMB: first?.serverRssMB,
    rssLastMB: last?.serverRssMB,
    rssMaxMB: Math.max(...segments.map((s) => s.serverRssMB)),
    rssGrowthPercent: 100 * rssGrowth,
    p99MinUs: Math.min(...p99s),
    p99MaxUs: Math.max(...p99s),
    pass: { noError: failures === 0, rssGrowthUnder10Percent: rssGrowth <= 0.1 },
  };
  return summary;
}

async function main(): Promise<void> {
  const total = Number(arg('seconds', '600'));
  const segment = Number(arg('segment', '30'));
  const load = Number(arg('load', '0.7'));
  // The request of bench/authz.ts, through its CLI (importing that module would run its benchmark).
  const bodyFile = path.join(os.tmpdir(), `oxds-soak-check-${process.pid}.bin`);
  execFileSync(process.execPath, [path.join(here, 'authz.js'), 'body', bodyFile]);
  const body = fs.readFileSync(bodyFile).subarray(5);
  const redis = await startRedis();
  const server = await startServer(redis.url);
  const out: Record<string, unknown> = {
    date: new Date().toISOString(),
    nproc: os.availableParallelism(),
    loadavgAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
  try {
    const loads = os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ');
    console.log(
      `soak: capacity first (10 s, -c4 -m32), then ${total} s at ${Math.round(load * 100)}% in ${segment} s ` +
        `segments; 2 shared cores, load average ${loads}`,
    );
    const cap = h2load(server.port, bodyFile, { seconds: 10, c: 4, m: 32 });
    const target = Math.max(100, Math.floor(cap.reqPerSec * load));
    const perClient = Math.max(1, Math.floor(target / 4));
    console.log(
      `capacity ${cap.reqPerSec.toFixed(0)} req/s (p99 ${cap.p99us} µs, failed ${cap.failed}); ` +
        `soak target ${perClient * 4} req/s`,
    );
    out['capacity'] = cap;
    out['targetReqPerSec'] = perClient * 4;
    const { segments, ran } = await soak({
      port: server.port,
      pid: server.child.pid!,
      bodyFile,
      body,
      total,
      segment,
      perClient,
      out,
    });
    const summary = soakSummary(segments, ran);
    const failures = summary.failures;
    out['segments'] = segments;
    out['summary'] = summary;
    console.log(
      `soak ran ${ran.toFixed(0)} s: ${summary.requests} requests, ${failures} failures; ` +
        `server RSS ${summary.rssFirstMB?.toFixed(1)} → ${summary.rssLastMB?.toFixed(1)} MiB ` +
        `(${summary.rssGrowthPercent.toFixed(1)}%, max ${summary.rssMaxMB.toFixed(1)}); ` +
        `p99 ${summary.p99MinUs}–${summary.p99MaxUs} µs`,
    );
  } finally {
    server.child.kill('SIGTERM');
    await redis.stop();
    fs.rmSync(bodyFile, { force: true });
    out['loadavgAtEnd'] = os.loadavg().map((x) => Number(x.toFixed(2)));
    fs.mkdirSync(path.join(repo, 'bench', 'results'), { recursive: true });
    fs.writeFileSync(path.join(repo, 'bench', 'results', 'soak-authz.json'), `${JSON.stringify(out, null, 2)}\n`);
  }
}

await main();
process.exit(0);
