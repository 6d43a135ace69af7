// Validation alone (strict shape, PGV rules, encode, decode round trip if needed) over every resource the
// translate of N generated descriptors publishes, against the floors of the same run (protobufjs
// fromObject + encode of the same objects, and the compiled encoder validation now uses).
// `--against <dir>[,<dir>]`: also times the validateResource of other builds (a copy of main's dist/),
// alternating rounds in this one process, for a before/after on the same machine at the same moment.
//   npm run build --silent && node dist/bench/validate.js [N] [--rounds R] [--against scratch/before-dist]
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildModel } from '../src/model/build.js';
import { translate } from '../src/xds/translate.js';
import { validateResource, type ValidationResult } from '../src/xds/validate.js';
import { encodeObject, protoRoot, TYPE_URLS, type ProtoObject, type ResourceKind } from '../proto/loader.js';
import { resolveType } from '../proto/json.js';
import { encodePlain } from '../proto/check/encode.js';
import { RESOURCE_SET_KEYS } from '../src/xds/types.js';
import { benchView } from './gen.js';

type Validate = (typeUrl: string, obj: ProtoObject) => ValidationResult;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const N = Number(process.argv[2] !== undefined && !process.argv[2].startsWith('--') ? process.argv[2] : '1000');
const ROUNDS = Number(arg('--rounds') ?? '5');
const against = arg('--against');

function cpuOf(fn: () => void): number {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

protoRoot();
const built = buildModel(benchView(N), {});
const out = translate(built.model, {});
// Fresh copies: translate caches its own validation per object identity.
const resources: Array<[string, ProtoObject]> = [];
for (const set of [out.envoy, out.grpc])
  for (const k of Object.keys(RESOURCE_SET_KEYS) as ResourceKind[])
    for (const o of set[RESOURCE_SET_KEYS[k]]) resources.push([TYPE_URLS[k], structuredClone(o)]);

const sides: Array<[string, Validate]> = [['this build', validateResource]];
for (const dir of against?.split(',') ?? []) {
  const file = pathToFileURL(path.resolve(dir, 'src/xds/validate.js')).href;
  const mod = (await import(file)) as { validateResource: Validate };
  sides.push([dir, mod.validateResource]);
}
const floor = (): void => {
  for (const [url, o] of resources) encodeObject(url, o);
};
// The compiled encoder alone (proto/check/encode.ts) over the same objects: this build's own floor.
const plainFloor = (): void => {
  for (const [url, o] of resources) if (encodePlain(resolveType(url), o) === null) throw new Error(`${url} fell back`);
};
const run = (v: Validate) => (): void => {
  for (const [url, o] of resources) if (!v(url, o).ok) throw new Error(`${url} invalid`);
};
// Warm-up: plans compiled, codecs generated, JIT.
for (const [, v] of sides) run(v)();
floor();
plainFloor();
const times = new Map<string, number[]>([
  ['floor fromObject+encode', []],
  ['floor compiled encoder', []],
  ...sides.map(([n]) => [n, []] as [string, number[]]),
]);
for (let r = 0; r < ROUNDS; r++) {
  // Alternate which side goes first: the second one pays for the garbage the first left.
  for (const [name, v] of r % 2 === 0 ? sides : [...sides].reverse()) times.get(name)?.push(cpuOf(run(v)));
  times.get('floor fromObject+encode')?.push(cpuOf(floor));
  times.get('floor compiled encoder')?.push(cpuOf(plainFloor));
}
const floorMs = median(times.get('floor fromObject+encode') ?? []);
// overFloorMs: what validation costs beyond the fromObject+encode it must do anyway (its bytes are sent).
const rows = [...times].map(([name, xs]) => ({
  name,
  medianCpuMs: Math.round(median(xs) * 10) / 10,
  perResourceUs: Math.round((median(xs) * 1000 * 10) / resources.length) / 10,
  overFloorMs: Math.round((median(xs) - floorMs) * 10) / 10,
  roundsMs: xs.map((x) => Math.round(x)),
}));
process.stdout.write(
  JSON.stringify(
    { descriptors: N, resources: resources.length, rounds: ROUNDS, loadavg: os.loadavg(), rows },
    null,
    2,
  ) + '\n',
);
