// Error collection for one object: every ConfigError carries kind/namespace/name/file/doc.
import type { ConfigError, ErrorCode, Severity, StoredObject } from './types.js';
import { namespaceOf } from './ids.js';

export interface ProblemItem {
  code: ErrorCode;
  message: string;
  field?: string;
}

export class Problems {
  readonly errors: ConfigError[] = [];
  constructor(
    readonly kind: string,
    readonly namespace: string,
    readonly name: string,
    readonly file?: string,
    readonly doc?: number,
  ) {}

  static of(so: StoredObject, kind: string): Problems {
    return new Problems(kind, namespaceOf(so.object), so.object.metadata.name, so.origin.file, so.origin.doc);
  }

  add(severity: Severity, code: ErrorCode, message: string, field?: string): void {
    const e: ConfigError = { code, message, severity, kind: this.kind, namespace: this.namespace, name: this.name };
    if (field !== undefined) e.field = field;
    if (this.file !== undefined) e.file = this.file;
    if (this.doc !== undefined) e.doc = this.doc;
    this.errors.push(e);
  }
  error(code: ErrorCode, message: string, field?: string): void {
    this.add('error', code, message, field);
  }
  warn(code: ErrorCode, message: string, field?: string): void {
    this.add('warning', code, message, field);
  }
  notice(code: ErrorCode, message: string, field?: string): void {
    this.add('notice', code, message, field);
  }
  addItems(severity: Severity, items: readonly ProblemItem[]): void {
    for (const i of items) this.add(severity, i.code, i.message, i.field);
  }
  get hasErrors(): boolean {
    return this.errors.some((e) => e.severity === 'error');
  }
  /** Number of errors so far: lets a caller check whether a sub-step added errors. */
  get errorCount(): number {
    return this.errors.filter((e) => e.severity === 'error').length;
  }
}

// ------------------------------------------------------------------ small typed readers

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: unknown };

export function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
export function asObject(v: unknown): JsonObject {
  return isObject(v) ? v : {};
}
export function str(o: JsonObject, k: string): string | undefined {
  const v = o[k];
  return typeof v === 'string' ? v : undefined;
}
export function num(o: JsonObject, k: string): number | undefined {
  const v = o[k];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
export function bool(o: JsonObject, k: string, def: boolean): boolean {
  const v = o[k];
  return typeof v === 'boolean' ? v : def;
}
export function strArray(o: JsonObject, k: string): string[] {
  const v = o[k];
  if (!Array.isArray(v)) return [];
  return v.filter((x): x is string => typeof x === 'string');
}
export function strMap(o: JsonObject, k: string): Record<string, string> {
  const v = o[k];
  const out: Record<string, string> = {};
  if (!isObject(v)) return out;
  for (const key of Object.keys(v).sort()) {
    const x = v[key];
    if (typeof x === 'string') out[key] = x;
    else if (typeof x === 'number' || typeof x === 'boolean') out[key] = String(x);
  }
  return out;
}
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
