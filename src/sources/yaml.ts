// Config directory loader: every *.yaml / *.yml file (recursively, sorted), multi-document.
import { promises as fs } from 'node:fs';
import { listConfigFiles, DEFAULT_LIMITS, type ConfigLimits } from './config-files.js';
import path from 'node:path';
import jsyaml from 'js-yaml';
import { createRequire } from 'node:module';
import type * as YamlLib from 'yaml';
import type { ConfigError, ConfigView, KubeObject, StoredObject } from '../model/types.js';
import { classify, unservedKind } from '../model/kinds.js';
import { normaliseKind, objectKey } from '../model/ids.js';

// The yaml library parses only what js-yaml's fast path cannot (syntax errors, aliases, ...):
// loaded on first use, a start-up does not pay for it.
const require = createRequire(import.meta.url);
const parseAllDocuments: typeof YamlLib.parseAllDocuments = (...args) =>
  (require('yaml') as typeof YamlLib).parseAllDocuments(...args);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The documents' values by js-yaml (YAML 1.2 core schema, duplicate keys refused), about 10× faster
 * than `yaml`'s document model on large files (bench/yaml-parse.ts); undefined when the file
 * needs the slow path: a syntax error, a duplicate key or an unknown tag (the `yaml` path then
 * reports each broken document with its line and column and keeps the others), aliases (the
 * `yaml` path bounds their expansion), explicit or collection keys (spelt differently by js-yaml).
 */
function fastDocuments(text: string): unknown[] | undefined {
  if (/^\s*\?(\s|$)/m.test(text) || /\{\s*[[{]/.test(text)) return undefined;
  let docs: unknown[];
  try {
    docs = jsyaml.loadAll(text, undefined, { schema: jsyaml.CORE_SCHEMA });
  } catch {
    return undefined;
  }
  // Only an alias shares a node, and an alias needs an anchor (`&`; js-yaml refuses an alias to an
  // unknown one): text without `&` is not walked.
  return text.includes('&') && sharesNodes(docs) ? undefined : docs;
}

/** Whether a node is reachable twice (what an alias makes): walks each node once. */
function sharesNodes(root: unknown): boolean {
  const seen = new Set<object>();
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (seen.has(v)) return true;
    seen.add(v);
    for (const x of Array.isArray(v) ? v : Object.values(v)) if (x !== null && typeof x === 'object') stack.push(x);
  }
  return false;
}

/**
 * Parse one file's text. Pure. Documents get `seq = seqStart + <index among produced objects>`.
 * Empty documents are skipped. Duplicate keys *within* the file: the first is kept, later ones
 * become OXDS_DUPLICATE_OBJECT errors (cross-file duplicates: see assembleView).
 */
/** Why a document's value is not a Kubernetes object (not a map, no apiVersion / kind / name, bad namespace). */
function notAnObject(value: unknown, base: { file: string; doc: number }): ConfigError | undefined {
  if (!isPlainObject(value)) {
    return {
      code: 'OXDS_NOT_AN_OBJECT',
      message: `document is a ${Array.isArray(value) ? 'list' : typeof value}, not a Kubernetes object`,
      ...base,
      severity: 'error',
    };
  }
  const missing: string[] = [];
  const kind = value['kind'];
  const apiVersion = value['apiVersion'];
  const metadata = value['metadata'];
  if (typeof apiVersion !== 'string' || apiVersion === '') missing.push('apiVersion');
  if (typeof kind !== 'string' || kind === '') missing.push('kind');
  const name = isPlainObject(metadata) ? metadata['name'] : undefined;
  if (typeof name !== 'string' || name === '') missing.push('metadata.name');
  if (missing.length > 0) {
    const err: ConfigError = {
      code: 'OXDS_MISSING_FIELD',
      message: `missing ${missing.join(', ')}`,
      field: missing[0],
      ...base,
      severity: 'error',
    };
    if (typeof kind === 'string') err.kind = kind;
    if (typeof name === 'string') err.name = name;
    return err;
  }
  const ns = (metadata as Record<string, unknown>)['namespace'];
  if (ns !== undefined && ns !== null && typeof ns !== 'string') {
    return {
      code: 'OXDS_INVALID_FIELD',
      message: 'metadata.namespace must be a string',
      field: 'metadata.namespace',
      kind: kind as string,
      name: name as string,
      ...base,
      severity: 'error',
    };
  }
  return undefined;
}

/**
 * The same documents with duplicate keys allowed (parsed on first use): what a broken document is (kind, name).
 */
function lenientReader(text: string): (i: number) => unknown {
  let lenientDocs: ReturnType<typeof parseAllDocuments> | undefined;
  return (i) => {
    try {
      lenientDocs ??= parseAllDocuments(text, { uniqueKeys: false });
      const d = (Array.isArray(lenientDocs) ? lenientDocs : [lenientDocs])[i];
      return d === undefined || d.errors.length > 0 ? undefined : d.toJS({ maxAliasCount: 1000 });
    } catch {
      return undefined;
    }
  };
}

export function parseYamlFile(
  relPath: string,
  text: string,
  seqStart: number,
): { objects: StoredObject[]; errors: ConfigError[] } {
  const objects: StoredObject[] = [];
  const errors: ConfigError[] = [];
  const file = relPath.split(path.sep).join('/');
  const seen = new Set<string>();
  /** One document's value → an object, or the error saying why it is not one. */
  const accept = (value: unknown, i: number): void => {
    const base = { file, doc: i };
    if (value === null || value === undefined) return; // empty document
    const invalid = notAnObject(value, base);
    if (invalid !== undefined) {
      errors.push(invalid);
      return;
    }
    const object = value as KubeObject;
    const key = objectKey(object);
    if (seen.has(key)) {
      errors.push({
        code: 'OXDS_DUPLICATE_OBJECT',
        message: `${key} is already declared earlier in ${file}: this document is ignored`,
        kind: normaliseKind(object.kind),
        namespace: key.split('/')[1] ?? '',
        name: object.metadata.name,
        ...base,
        severity: 'error',
      });
      return;
    }
    seen.add(key);
    objects.push({ key, object, origin: { file, doc: i, seq: seqStart + objects.length } });
  };
  const fast = fastDocuments(text);
  if (fast !== undefined) {
    fast.forEach(accept);
    return { objects, errors };
  }
  let docs: ReturnType<typeof parseAllDocuments>;
  try {
    docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  } catch (e) {
    errors.push({
      code: 'OXDS_YAML_PARSE',
      message: `YAML parse error: ${e instanceof Error ? e.message : String(e)}`,
      file,
      doc: 0,
      severity: 'error',
    });
    return { objects, errors };
  }
  const list = Array.isArray(docs) ? docs : [docs];
  const lenient = lenientReader(text);
  list.forEach((doc, i) => {
    const base = { file, doc: i };
    if (doc.errors.length > 0) {
      errors.push(...docParseErrors(doc.errors, text, lenient(i), base));
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 1000 });
    } catch (e) {
      errors.push({
        code: 'OXDS_YAML_PARSE',
        message: e instanceof Error ? e.message : String(e),
        ...base,
        severity: 'error',
      });
      return;
    }
    accept(value, i);
  });
  return { objects, errors };
}

interface YamlIssue {
  code: string;
  message: string;
  linePos?: [{ line: number; col: number }, ...{ line: number; col: number }[]] | undefined;
}

/** The key written at a 1-based line/column of `text` (`volumeMounts` for `    volumeMounts:`). */
function keyAt(text: string, line: number, col: number): string | undefined {
  const l = text.split('\n', line)[line - 1];
  const m = l === undefined ? null : /^\s*(?:-\s+)?["']?([^"':]+)["']?\s*:/.exec(l.slice(Math.max(0, col - 1)));
  return m?.[1]?.trim();
}

/**
 * Errors of one document that does not parse: one line each, with the position once and no
 * excerpt. A document whose only fault is a duplicate key, of a kind outside our scope
 * (a Deployment of an example), is only a notice: it is skipped anyway.
 */
function docParseErrors(
  issues: readonly YamlIssue[],
  text: string,
  lenientValue: unknown,
  base: { file: string; doc: number },
): ConfigError[] {
  const obj = isPlainObject(lenientValue) ? lenientValue : undefined;
  const kind = typeof obj?.['kind'] === 'string' ? obj['kind'] : undefined;
  const apiVersion = typeof obj?.['apiVersion'] === 'string' ? obj['apiVersion'] : undefined;
  const meta = isPlainObject(obj?.['metadata']) ? (obj['metadata'] as Record<string, unknown>) : undefined;
  const name = typeof meta?.['name'] === 'string' ? meta['name'] : undefined;
  const ns = typeof meta?.['namespace'] === 'string' ? meta['namespace'] : undefined;
  const who = {
    ...(kind !== undefined ? { kind } : {}),
    ...(name !== undefined ? { name, namespace: ns ?? 'default' } : {}),
  };
  const outOfScope =
    kind !== undefined &&
    apiVersion !== undefined &&
    classify(apiVersion, kind) === undefined &&
    !unservedKind(apiVersion, kind).misspelt;
  const onlyDuplicates = issues.every((e) => e.code === 'DUPLICATE_KEY');
  return issues.map((e): ConfigError => {
    const pos = e.linePos?.[0];
    const where = pos !== undefined ? `line ${pos.line}, column ${pos.col}` : undefined;
    const first = (e.message.split('\n')[0] ?? e.message)
      .replace(/\s+at line \d+, column \d+:?\s*$/, '')
      .replace(/:\s*$/, '');
    if (e.code === 'DUPLICATE_KEY') {
      const key = pos !== undefined ? keyAt(text, pos.line, pos.col) : undefined;
      const keyText = key !== undefined ? ` ${JSON.stringify(key)}` : '';
      const what = `duplicate key${keyText}${where !== undefined ? ` at ${where}` : ''}`;
      if (outOfScope && onlyDuplicates) {
        return {
          code: 'OXDS_SKIPPED_KIND',
          message:
            `${apiVersion} ${kind} is outside otoroshi-xds's scope: ` +
            `skipped (it has a ${what}: kubectl would reject it too)`,
          ...who,
          ...base,
          severity: 'notice',
        };
      }
      return {
        code: 'OXDS_YAML_PARSE',
        message: `${what}: a key may appear once per map (the document is ignored)`,
        ...who,
        ...base,
        severity: 'error',
      };
    }
    return {
      code: 'OXDS_YAML_PARSE',
      message: `${where !== undefined ? `${where}: ` : ''}${first}`,
      ...who,
      ...base,
      severity: 'error',
    };
  });
}

export interface ParsedFile {
  relPath: string;
  objects: StoredObject[];
  errors: ConfigError[];
}

/**
 * Merge parsed files (in the given order) into a view: the first declaration of a key wins, later
 * ones become OXDS_DUPLICATE_OBJECT load errors. Objects are re-sequenced in order.
 */
export function assembleView(files: readonly ParsedFile[]): ConfigView {
  const objects: StoredObject[] = [];
  const loadErrors: ConfigError[] = [];
  const firstAt = new Map<string, StoredObject>();
  for (const f of files) {
    loadErrors.push(...f.errors);
    for (const o of f.objects) {
      const prev = firstAt.get(o.key);
      if (prev !== undefined) {
        const e: ConfigError = {
          code: 'OXDS_DUPLICATE_OBJECT',
          message:
            `${o.key} is already declared in ${prev.origin.file ?? '?'} (document ${prev.origin.doc ?? 0}): ` +
            'this one is ignored',
          kind: normaliseKind(o.object.kind),
          namespace: o.key.split('/')[1] ?? '',
          name: o.object.metadata.name,
          severity: 'error',
        };
        if (o.origin.file !== undefined) e.file = o.origin.file;
        if (o.origin.doc !== undefined) e.doc = o.origin.doc;
        loadErrors.push(e);
        continue;
      }
      const so: StoredObject = { key: o.key, object: o.object, origin: { ...o.origin, seq: objects.length } };
      firstAt.set(o.key, so);
      objects.push(so);
    }
  }
  return { objects, loadErrors };
}

/** Load a config directory into a ConfigView. Unreadable files become OXDS_YAML_PARSE load errors. */
export async function loadConfigDir(dir: string, limits: ConfigLimits = DEFAULT_LIMITS): Promise<ConfigView> {
  const files: ParsedFile[] = [];
  const listing = await listConfigFiles(dir, limits);
  for (const { rel } of listing.files) {
    let text: string;
    try {
      text = await fs.readFile(path.join(dir, rel), 'utf8');
    } catch (e) {
      files.push({
        relPath: rel,
        objects: [],
        errors: [
          {
            code: 'OXDS_YAML_PARSE',
            message: `cannot read file: ${e instanceof Error ? e.message : String(e)}`,
            file: rel,
            doc: 0,
            severity: 'error',
          },
        ],
      });
      continue;
    }
    files.push({ relPath: rel, ...parseYamlFile(rel, text, 0) });
  }
  const view = assembleView(files);
  return { objects: view.objects, loadErrors: [...listing.errors, ...view.loadErrors] };
}
