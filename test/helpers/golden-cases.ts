// The models and translated resources of the golden cases (testdata/in/<case>.yaml with its optional
// <case>.options.json), for tests that check every resource we publish.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseYamlFile } from '../../src/sources/yaml.js';
import { buildModel } from '../../src/model/build.js';
import { translate } from '../../src/xds/translate.js';
import { RESOURCE_SET_KEYS, type TranslateOptions, type TranslateOutput } from '../../src/xds/types.js';
import type { Model } from '../../src/model/types.js';
import { TYPE_URLS, type ProtoObject, type ResourceKind } from '../../proto/loader.js';

const IN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'testdata', 'in');

/** Every resource of both node types, with its type URL. */
export function resourcesOf(out: TranslateOutput): Array<[string, ProtoObject]> {
  const all: Array<[string, ProtoObject]> = [];
  for (const set of [out.envoy, out.grpc])
    for (const k of Object.keys(RESOURCE_SET_KEYS) as ResourceKind[])
      for (const o of set[RESOURCE_SET_KEYS[k]]) all.push([TYPE_URLS[k], o]);
  return all;
}

/** Each golden case's name, model and translate options. */
export function goldenCaseModels(): Array<{ name: string; model: Model; opts: Partial<TranslateOptions> | undefined }> {
  const out: Array<{ name: string; model: Model; opts: Partial<TranslateOptions> | undefined }> = [];
  for (const file of fs.readdirSync(IN).filter((f) => f.endsWith('.yaml'))) {
    const name = file.slice(0, -'.yaml'.length);
    const optFile = path.join(IN, `${name}.options.json`);
    const opts = fs.existsSync(optFile)
      ? (JSON.parse(fs.readFileSync(optFile, 'utf8')) as Partial<TranslateOptions>)
      : undefined;
    const parsed = parseYamlFile(file, fs.readFileSync(path.join(IN, file), 'utf8'), 0);
    out.push({ name, model: buildModel({ objects: parsed.objects, loadErrors: parsed.errors }).model, opts });
  }
  return out;
}

/** Each golden case's name and translated resources. */
export function goldenCaseResources(): Array<{ name: string; resources: Array<[string, ProtoObject]> }> {
  return goldenCaseModels().map(({ name, model, opts }) => ({ name, resources: resourcesOf(translate(model, opts)) }));
}
