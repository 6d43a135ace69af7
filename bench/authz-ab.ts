// In-process A/B of the Check's own work (decode → decide → encode of the bench's CheckRequest on
// the bench's 50-descriptor / 2,000-key model, memory quotas): two builds imported into ONE Node
// process and alternated round by round, CPU time (`process.cpuUsage`) per operation, medians.
// On a shared machine this is steadier than checks/s through gRPC: both sides see the same load.
//   node dist/bench/authz-ab.js <distA> [distB = this build's dist] [iterations=100000] [rounds=8]
// e.g. an older build: git worktree add --detach /tmp/old <commit> && (cd /tmp/old && npm ci &&
// npx tsc -p tsconfig.json) && node dist/bench/authz-ab.js /tmp/old/dist
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchCheckRequest, modelYaml } from './authz.js';

interface Side {
  decode(b: Buffer): { path: string };
  check(input: unknown): Promise<{ allow: boolean }>;
  encode(d: unknown, input: unknown): Buffer;
}

type Mod = Record<string, unknown>;

async function load(root: string): Promise<Side> {
  const imp = (p: string): Promise<Mod> => import(path.resolve(root, p)) as Promise<Mod>;
  const yaml = await imp('src/sources/yaml.js');
  const build = await imp('src/model/build.js');
  const policy = await imp('src/authz/policy.js');
  const decide = await imp('src/authz/decide.js');
  const codec = await imp('src/authz/check-codec.js');
  const quota = await imp('src/authz/quota/index.js');
  /* eslint-disable @typescript-eslint/no-explicit-any -- two builds of differing versions */
  const built = (build['buildModel'] as any)({
    objects: (yaml['parseYamlFile'] as any)('bench.yaml', modelYaml(), 0).objects,
    loadErrors: [],
  });
  const az = new (decide['Authorizer'] as any)({ quota: (quota['createQuotaStore'] as any)({}) });
  az.setPolicy((policy['buildPolicy'] as any)(built.model));
  return {
    decode: codec['decodeCheckRequest'] as Side['decode'],
    check: (i) => az.check(i) as Promise<{ allow: boolean }>,
    encode: codec['encodeDecision'] as Side['encode'],
  };
  /* eslint-enable @typescript-eslint/no-explicit-any */
}

const cpuNs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};

async function main(): Promise<void> {
  const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const [a, b = here, nS = '100000', rS = '8'] = process.argv.slice(2);
  if (a === undefined) throw new Error('usage: authz-ab <distA> [distB] [iterations] [rounds]');
  const n = Number(nS);
  const rounds = Number(rS);
  const req = benchCheckRequest();
  const sides: Record<string, Side> = { A: await load(a), B: await load(b) };
  let sink = 0;
  const phases: Record<string, (s: Side, k: number) => Promise<void>> = {
    decode: async (s, k) => {
      for (let i = 0; i < k; i++) sink += s.decode(req).path.length;
    },
    decide: async (s, k) => {
      const input = s.decode(req);
      for (let i = 0; i < k; i++) sink += (await s.check(input)).allow ? 1 : 0;
    },
    encode: async (s, k) => {
      const input = s.decode(req);
      const d = await s.check(input);
      for (let i = 0; i < k; i++) sink += s.encode(d, input).length;
    },
    all: async (s, k) => {
      for (let i = 0; i < k; i++) {
        const input = s.decode(req);
        sink += s.encode(await s.check(input), input).length;
      }
    },
  };
  for (const s of Object.values(sides)) for (const f of Object.values(phases)) await f(s, 30_000); // warm-up
  const res: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++)
    for (const k of r % 2 ? ['B', 'A'] : ['A', 'B'])
      for (const [ph, f] of Object.entries(phases)) {
        const t = cpuNs();
        await f(sides[k]!, n);
        (res[`${k}.${ph}`] ??= []).push((cpuNs() - t) / n);
      }
  const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
  console.log(`A ${a}\nB ${b}\n${rounds} rounds × ${n}; CPU ns per operation (medians)`);
  for (const ph of Object.keys(phases)) {
    const ma = med(res[`A.${ph}`]!);
    const mb = med(res[`B.${ph}`]!);
    console.log(
      `${ph.padEnd(7)} A ${ma.toFixed(0).padStart(6)}  B ${mb.toFixed(0).padStart(6)}  B/A ${(mb / ma).toFixed(3)}`,
    );
  }
  if (sink === -1) console.log(sink);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
