// protoc-gen-validate (PGV) rules, as Envoy checks them on every resource it receives. Why a plan:
// rules are read once per protobuf.Type from `field.parsedOptions` and compiled into closures
// (cached in a WeakMap keyed by Type); only fields that carry rules, or lead to messages that
// (transitively) carry rules or Any payloads, are visited. The happy path allocates nothing beyond
// the path stack. Works on decoded messages and on plain objects in fromObject form.
import net from 'node:net';
import protobuf from 'protobufjs';
import type { ProtoObject } from '../loader.js';
import { fullNameOf, longToNumber, typeOfAnyUrl } from '../json.js';
import { re2Class } from '../re2.js';
import { Ctx, MapKey, elemMessageType, enumOf, hasOwn, isPresent, show, type ValidationIssue } from './context.js';

// ---------------------------------------------------------------- rule plumbing

type RulesObj = Record<string, unknown>;

interface Rule<T> {
  rule: string;
  ok(v: T): boolean;
  msg(v: T): string;
  /** `ok` as a JS expression of the value `x`, for `localRules` (else it calls `ok`). */
  js?: (x: string, g: Gen) => string;
}

/**
 * Checks one (present) element value: a scalar, or a message including its own rules and recursion.
 * `inline`: the same verdict as statements for `localRules`.
 */
type ElemCheck = ((v: unknown, ctx: Ctx) => void) & { inline?: Inline };

/**
 * Code of a check for `localRules`, given the variable holding the value: statements that
 * `return false` where the check would report.
 */
type Inline = (g: Gen, v: string) => string;

/** The constants and fresh variable names of one generated `localRules` function. */
class Gen {
  readonly consts: unknown[] = [];
  private n = 0;
  /** The name under which `x` is in scope of the generated code. */
  c(x: unknown): string {
    this.consts.push(x);
    return `C${this.consts.length - 1}`;
  }
  v(): string {
    return `v${this.n++}`;
  }
}

function withInline(check: (v: unknown, ctx: Ctx) => void, inline: Inline): ElemCheck {
  return Object.assign(check, { inline });
}

/** The rules of `list` as one JS condition on the variable `x`. */
function rulesJs<T>(list: readonly Rule<T>[], x: string, g: Gen): string {
  return list.map((r) => (r.js ? r.js(x, g) : `${g.c(r.ok)}(${x})`)).join(' && ');
}

/** `check` as statements: its inline code, else a call that the probe context records. */
function callOr(g: Gen, check: ElemCheck, v: string): string {
  return check.inline ? check.inline(g, v) : `${g.c(check)}(${v}, ctx); if (ctx.failed) return false;\n`;
}

function runRules<T>(rules: Rule<T>[], v: T, ctx: Ctx): void {
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i] as Rule<T>;
    if (!r.ok(v)) ctx.report(r.rule, r.msg(v));
  }
}

function mergeRules(opts: Array<Record<string, unknown>> | undefined, key: string): RulesObj | undefined {
  if (!opts) return undefined;
  let out: RulesObj | undefined;
  for (const o of opts) {
    const r = o[key];
    if (r && typeof r === 'object') out = out ? deepMerge(out, r as RulesObj) : (r as RulesObj);
  }
  return out;
}

function deepMerge(a: RulesObj, b: RulesObj): RulesObj {
  const out: RulesObj = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      prev && typeof prev === 'object' && !Array.isArray(prev) && v && typeof v === 'object' && !Array.isArray(v)
        ? deepMerge(prev as RulesObj, v as RulesObj)
        : v;
  }
  return out;
}

function boolOpt(
  node: { options?: Record<string, unknown> | undefined; parsedOptions?: unknown },
  key: string,
): boolean {
  if (node.options && node.options[key] === true) return true;
  const po = node.parsedOptions as Array<Record<string, unknown>> | undefined;
  if (Array.isArray(po)) for (const o of po) if (o[key] === true) return true;
  return false;
}

// ---------------------------------------------------------------- regexes

interface Matcher {
  test(s: string): boolean;
}
const re2Cache = new Map<string, Matcher>();
/** The RE2 matcher of a PGV pattern, compiled (and re2-wasm loaded) when a value is first tested. */
function re2(pattern: string): Matcher {
  let m = re2Cache.get(pattern);
  if (!m) {
    let compiled: Matcher | undefined;
    m = {
      test: (s) => {
        compiled ??= new (re2Class())(pattern, 'u') as unknown as Matcher;
        return compiled.test(s);
      },
    };
    re2Cache.set(pattern, m);
  }
  return m;
}

// PGV's definitions (validate.proto / templates).
const HEADER_NAME_STRICT = /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/;
const HEADER_VALUE_STRICT = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
const HEADER_LOOSE = /^[^\u0000\u000A\u000D]*$/;
const HOSTNAME_LABEL = /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
const EMAIL = /^[^@\s<>]+@[^@\s<>]+$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function isHostname(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  const h = s.endsWith('.') ? s.slice(0, -1) : s;
  for (const l of h.split('.')) if (l.length > 63 || !HOSTNAME_LABEL.test(l)) return false;
  return true;
}
function isUri(s: string): boolean {
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(s)) return false;
  try {
    new URL(s);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- scalar families

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

/** len / min_len / max_len, in characters (code points). */
function stringLengthRules(r: RulesObj): Rule<string>[] {
  const out: Rule<string>[] = [];
  const num = (k: string): number | undefined => (r[k] === undefined ? undefined : Number(r[k]));
  const minLen = num('min_len');
  const maxLen = num('max_len');
  const len = num('len');
  if (len !== undefined)
    out.push({
      rule: 'string.len',
      ok: (s) => codePoints(s) === len,
      msg: () => `length must be exactly ${len} character(s)`,
    });
  if (minLen !== undefined && minLen > 0)
    out.push({
      rule: 'string.min_len',
      ok: (s) => s.length >= minLen && (s.length >= 2 * minLen || codePoints(s) >= minLen),
      msg: (s) =>
        s.length === 0
          ? `must not be empty (at least ${minLen} character(s))`
          : `length must be at least ${minLen} character(s)`,
    });
  if (maxLen !== undefined)
    out.push({
      rule: 'string.max_len',
      ok: (s) => s.length <= maxLen || codePoints(s) <= maxLen,
      msg: () => `length must be at most ${maxLen} character(s)`,
    });
  return out;
}

/** len_bytes / min_bytes / max_bytes, in UTF-8 bytes. */
function stringByteRules(r: RulesObj): Rule<string>[] {
  const out: Rule<string>[] = [];
  const num = (k: string): number | undefined => (r[k] === undefined ? undefined : Number(r[k]));
  const lenBytes = num('len_bytes');
  const minBytes = num('min_bytes');
  const maxBytes = num('max_bytes');
  if (lenBytes !== undefined)
    out.push({
      rule: 'string.len_bytes',
      ok: (s) => Buffer.byteLength(s) === lenBytes,
      msg: () => `must be exactly ${lenBytes} byte(s)`,
    });
  if (minBytes !== undefined && minBytes > 0)
    out.push({
      rule: 'string.min_bytes',
      ok: (s) => s.length >= minBytes || Buffer.byteLength(s) >= minBytes,
      msg: () => `must be at least ${minBytes} byte(s)`,
    });
  if (maxBytes !== undefined)
    out.push({
      rule: 'string.max_bytes',
      ok: (s) => s.length * 3 <= maxBytes || Buffer.byteLength(s) <= maxBytes,
      msg: () => `must be at most ${maxBytes} byte(s)`,
    });
  return out;
}

/** const, prefix, suffix, contains, not_contains, pattern, in, not_in. */
function stringContentRules(r: RulesObj): Rule<string>[] {
  const out: Rule<string>[] = [];
  if (typeof r['const'] === 'string') {
    const c = r['const'];
    out.push({ rule: 'string.const', ok: (s) => s === c, msg: () => `must equal ${JSON.stringify(c)}` });
  }
  if (typeof r['prefix'] === 'string') {
    const p = r['prefix'];
    out.push({ rule: 'string.prefix', ok: (s) => s.startsWith(p), msg: () => `must start with ${JSON.stringify(p)}` });
  }
  if (typeof r['suffix'] === 'string') {
    const p = r['suffix'];
    out.push({ rule: 'string.suffix', ok: (s) => s.endsWith(p), msg: () => `must end with ${JSON.stringify(p)}` });
  }
  if (typeof r['contains'] === 'string') {
    const p = r['contains'];
    out.push({ rule: 'string.contains', ok: (s) => s.includes(p), msg: () => `must contain ${JSON.stringify(p)}` });
  }
  if (typeof r['not_contains'] === 'string') {
    const p = r['not_contains'];
    out.push({
      rule: 'string.not_contains',
      ok: (s) => !s.includes(p),
      msg: () => `must not contain ${JSON.stringify(p)}`,
    });
  }
  if (typeof r['pattern'] === 'string') {
    const p = r['pattern'];
    const m = re2(p);
    out.push({ rule: 'string.pattern', ok: (s) => m.test(s), msg: (s) => `${show(s)} must match pattern ${p}` });
  }
  if (Array.isArray(r['in'])) {
    const set = new Set((r['in'] as unknown[]).map(String));
    out.push({
      rule: 'string.in',
      ok: (s) => set.has(s),
      msg: (s) => `${show(s)} must be one of ${[...set].join(', ')}`,
    });
  }
  if (Array.isArray(r['not_in'])) {
    const set = new Set((r['not_in'] as unknown[]).map(String));
    out.push({
      rule: 'string.not_in',
      ok: (s) => !set.has(s),
      msg: (s) => `${show(s)} must not be one of ${[...set].join(', ')}`,
    });
  }
  return out;
}

/** well_known_regex: HTTP header name / value, strict or not. */
function stringHeaderRules(r: RulesObj): Rule<string>[] {
  const out: Rule<string>[] = [];
  const wk = r['well_known_regex'];
  if (wk === 'HTTP_HEADER_NAME' || wk === 'HTTP_HEADER_VALUE' || wk === 1 || wk === 2) {
    const strict = r['strict'] !== false;
    const isName = wk === 'HTTP_HEADER_NAME' || wk === 1;
    const re = strict ? (isName ? HEADER_NAME_STRICT : HEADER_VALUE_STRICT) : HEADER_LOOSE;
    const label = `${isName ? 'HTTP_HEADER_NAME' : 'HTTP_HEADER_VALUE'}${strict ? '' : ' (non-strict)'}`;
    const what = strict
      ? isName
        ? 'a valid HTTP header name (token characters only, no spaces)'
        : 'a valid HTTP header value (no control characters)'
      : 'free of NUL, CR and LF characters';
    // An empty header name fails the strict regex (`+`), like PGV.
    out.push({
      rule: 'string.well_known_regex',
      ok: (s) => re.test(s),
      msg: (s) => `${show(s)} must be ${what} [${label}]`,
    });
  }
  return out;
}

/** The format flags: email, hostname, ip, uri, address, uuid... */
function stringFormatRules(r: RulesObj): Rule<string>[] {
  const out: Rule<string>[] = [];
  const flag = (k: string, rule: string, test: (s: string) => boolean, what: string): void => {
    if (r[k] === true) out.push({ rule: `string.${rule}`, ok: test, msg: (s) => `${show(s)} must be ${what}` });
  };
  flag('email', 'email', (s) => EMAIL.test(s), 'a valid email address');
  flag('hostname', 'hostname', isHostname, 'a valid hostname');
  flag('ip', 'ip', (s) => net.isIP(s) !== 0, 'a valid IP address');
  flag('ipv4', 'ipv4', (s) => net.isIPv4(s), 'a valid IPv4 address');
  flag('ipv6', 'ipv6', (s) => net.isIPv6(s), 'a valid IPv6 address');
  flag('uri', 'uri', isUri, 'an absolute URI');
  flag('uri_ref', 'uri_ref', (s) => !/[\s<>"{}|\\^`]/.test(s), 'a valid URI reference');
  flag('address', 'address', (s) => net.isIP(s) !== 0 || isHostname(s), 'a valid IP address or hostname');
  flag('uuid', 'uuid', (s) => UUID.test(s), 'a valid UUID');
  return out;
}

function compileString(r: RulesObj): Rule<string>[] {
  return [
    ...stringLengthRules(r),
    ...stringByteRules(r),
    ...stringContentRules(r),
    ...stringHeaderRules(r),
    ...stringFormatRules(r),
  ];
}

/** The range rule of `r` (lt/lte/gt/gte, one of them or a pair) as a JS condition on numbers. */
function numberJs(r: RulesObj, conv: (x: unknown) => unknown): (x: string, g: Gen) => string {
  const at = (k: string): unknown => (r[k] !== undefined ? conv(r[k]) : undefined);
  const lt = at('lt');
  const lte = at('lte');
  const gt = at('gt');
  const gte = at('gte');
  return (x, g) => {
    const up = lt !== undefined ? `${x} < ${g.c(lt)}` : lte !== undefined ? `!(${x} > ${g.c(lte)})` : null;
    const lo = gt !== undefined ? `${x} > ${g.c(gt)}` : gte !== undefined ? `!(${x} < ${g.c(gte)})` : null;
    if (up && lo) {
      const upper = (lt ?? lte) as number;
      const lower = (gt ?? gte) as number;
      return numCmp(upper, lower) > 0 ? `(${lo} && ${up})` : `(${lo} || ${up})`;
    }
    return `(${up ?? lo ?? 'true'})`;
  };
}

/** Numeric comparisons shared by numbers and durations/timestamps. */
function compileRange<T>(
  family: string,
  r: RulesObj,
  conv: (x: unknown) => T,
  cmp: (a: T, b: T) => number,
  fmt: (x: T) => string,
): Rule<T>[] {
  const out: Rule<T>[] = [];
  if (r['const'] !== undefined) {
    const c = conv(r['const']);
    out.push({
      rule: `${family}.const`,
      ok: (v) => cmp(v, c) === 0,
      msg: (v) => `must equal ${fmt(c)} (got ${fmt(v)})`,
    });
  }
  // Numbers compare as JS in `localRules` (numCmp: NaN compares equal to everything).
  const js = cmp === (numCmp as unknown) ? numberJs(r, conv as (x: unknown) => unknown) : undefined;
  const lt = r['lt'] !== undefined ? conv(r['lt']) : undefined;
  const lte = r['lte'] !== undefined ? conv(r['lte']) : undefined;
  const gt = r['gt'] !== undefined ? conv(r['gt']) : undefined;
  const gte = r['gte'] !== undefined ? conv(r['gte']) : undefined;
  const upper = lt !== undefined ? { v: lt, incl: false } : lte !== undefined ? { v: lte, incl: true } : undefined;
  const lower = gt !== undefined ? { v: gt, incl: false } : gte !== undefined ? { v: gte, incl: true } : undefined;
  const upOk = (v: T): boolean => (upper ? (upper.incl ? cmp(v, upper.v) <= 0 : cmp(v, upper.v) < 0) : true);
  const loOk = (v: T): boolean => (lower ? (lower.incl ? cmp(v, lower.v) >= 0 : cmp(v, lower.v) > 0) : true);
  const uName = upper ? `${upper.incl ? 'lte' : 'lt'}` : '';
  const lName = lower ? `${lower.incl ? 'gte' : 'gt'}` : '';
  if (upper && lower) {
    const lo = `${lower.incl ? '[' : '('}${fmt(lower.v)}`;
    const hi = `${fmt(upper.v)}${upper.incl ? ']' : ')'}`;
    if (cmp(upper.v, lower.v) > 0) {
      out.push({
        rule: `${family}.${lName}_${uName}`,
        ok: (v) => loOk(v) && upOk(v),
        js,
        msg: (v) => `must be inside range ${lo}, ${hi} (got ${fmt(v)})`,
      });
    } else {
      // PGV exclusive range: valid when outside [upper, lower].
      const olo = `${upper.incl ? '(' : '['}${fmt(upper.v)}`;
      const ohi = `${fmt(lower.v)}${lower.incl ? ')' : ']'}`;
      out.push({
        rule: `${family}.${lName}_${uName}`,
        ok: (v) => loOk(v) || upOk(v),
        js,
        msg: (v) => `must be outside range ${olo}, ${ohi} (got ${fmt(v)})`,
      });
    }
  } else if (upper) {
    out.push({
      rule: `${family}.${uName}`,
      ok: upOk,
      js,
      msg: (v) => `must be ${upper.incl ? 'at most' : 'less than'} ${fmt(upper.v)} (got ${fmt(v)})`,
    });
  } else if (lower) {
    out.push({
      rule: `${family}.${lName}`,
      ok: loOk,
      js,
      msg: (v) => `must be ${lower.incl ? 'at least' : 'greater than'} ${fmt(lower.v)} (got ${fmt(v)})`,
    });
  }
  if (Array.isArray(r['in'])) {
    const vals = (r['in'] as unknown[]).map(conv);
    out.push({
      rule: `${family}.in`,
      ok: (v) => vals.some((x) => cmp(v, x) === 0),
      msg: (v) => `must be one of ${vals.map(fmt).join(', ')} (got ${fmt(v)})`,
    });
  }
  if (Array.isArray(r['not_in'])) {
    const vals = (r['not_in'] as unknown[]).map(conv);
    out.push({
      rule: `${family}.not_in`,
      ok: (v) => !vals.some((x) => cmp(v, x) === 0),
      msg: (v) => `must not be one of ${vals.map(fmt).join(', ')} (got ${fmt(v)})`,
    });
  }
  return out;
}

const numCmp = (a: number, b: number): number => (a < b ? -1 : a > b ? 1 : 0);

function toNum(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return longToNumber(v);
}

/** Duration / Timestamp as [seconds, nanos] folded into one comparable number pair. */
interface SecNanos {
  s: number;
  n: number;
}
function toSecNanos(v: unknown): SecNanos {
  const o = (v ?? {}) as { seconds?: unknown; nanos?: unknown };
  return { s: toNum(o.seconds ?? 0), n: Number(o.nanos ?? 0) };
}
const snCmp = (a: SecNanos, b: SecNanos): number => numCmp(a.s, b.s) || numCmp(a.n, b.n);
function fmtSecNanos(x: SecNanos): string {
  if (x.n === 0) return `${x.s}s`;
  const t = x.s + x.n / 1e9;
  return `${t}s`;
}

const NUMERIC_FAMILIES: Record<string, true> = {
  double: true,
  float: true,
  int32: true,
  int64: true,
  uint32: true,
  uint64: true,
  sint32: true,
  sint64: true,
  fixed32: true,
  fixed64: true,
  sfixed32: true,
  sfixed64: true,
};

const WRAPPER_FAMILY: Record<string, string> = {
  '.google.protobuf.DoubleValue': 'double',
  '.google.protobuf.FloatValue': 'float',
  '.google.protobuf.Int64Value': 'int64',
  '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.Int32Value': 'int32',
  '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.BoolValue': 'bool',
  '.google.protobuf.StringValue': 'string',
  '.google.protobuf.BytesValue': 'bytes',
};

function bytesLength(v: unknown): number {
  if (v == null) return 0;
  if (typeof v === 'string') {
    let pad = 0;
    if (v.endsWith('==')) pad = 2;
    else if (v.endsWith('=')) pad = 1;
    return Math.floor((v.length * 3) / 4) - pad;
  }
  return (v as { length?: number }).length ?? 0;
}

function enumNumber(e: protobuf.Enum, v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return e.values[v];
  if (v == null) return 0;
  return undefined;
}

/** The enum rules of a field: defined_only, const, in, not_in. */
function compileEnum(enumType: protobuf.Enum, rules: RulesObj): ElemCheck | null {
  const r = rules['enum'] as RulesObj | undefined;
  if (!r) return null;
  const list: Rule<number>[] = [];
  if (r['defined_only'] === true)
    list.push({
      rule: 'enum.defined_only',
      ok: (n) => enumType.valuesById[n] !== undefined,
      js: (x, g) => `${g.c(enumType.valuesById)}[${x}] !== undefined`,
      msg: (n) => `${n} is not a defined ${enumType.name} value`,
    });
  const name = (n: number): string => enumType.valuesById[n] ?? String(n);
  const conv = (x: unknown): number => enumNumber(enumType, x) ?? NaN;
  if (r['const'] !== undefined) {
    const c = conv(r['const']);
    list.push({ rule: 'enum.const', ok: (n) => n === c, msg: (n) => `must be ${name(c)} (got ${name(n)})` });
  }
  if (Array.isArray(r['in'])) {
    const s = new Set((r['in'] as unknown[]).map(conv));
    list.push({
      rule: 'enum.in',
      ok: (n) => s.has(n),
      msg: (n) => `must be one of ${[...s].map(name).join(', ')} (got ${name(n)})`,
    });
  }
  if (Array.isArray(r['not_in'])) {
    const s = new Set((r['not_in'] as unknown[]).map(conv));
    list.push({
      rule: 'enum.not_in',
      ok: (n) => !s.has(n),
      msg: () => `must not be ${[...s].map(name).join(' or ')}`,
    });
  }
  if (list.length === 0) return null;
  const check = (v: unknown, ctx: Ctx): void => {
    const n = enumNumber(enumType, v);
    if (n === undefined) {
      ctx.report('enum.defined_only', `${show(v)} is not a ${enumType.name} value`);
      return;
    }
    runRules(list, n, ctx);
  };
  return withInline(check, (g, v) => {
    const n = g.v();
    const e = g.c(enumType);
    return (
      `{ const ${n} = ${v} == null ? 0 : typeof ${v} === 'number' ? ${v} : ` +
      `typeof ${v} === 'string' ? ${e}.values[${v}] : undefined;\n` +
      `if (${n} === undefined || !(${rulesJs(list, n, g)})) return false; }\n`
    );
  });
}

/** The bytes rules of a field: lengths and IP address sizes. */
function compileBytes(rules: RulesObj): ElemCheck | null {
  const r = rules['bytes'] as RulesObj | undefined;
  if (!r) return null;
  const list: Rule<number>[] = [];
  const minLen = r['min_len'] !== undefined ? Number(r['min_len']) : 0;
  if (minLen > 0)
    list.push({ rule: 'bytes.min_len', ok: (n) => n >= minLen, msg: () => `must be at least ${minLen} byte(s)` });
  if (r['max_len'] !== undefined) {
    const m = Number(r['max_len']);
    list.push({ rule: 'bytes.max_len', ok: (n) => n <= m, msg: () => `must be at most ${m} byte(s)` });
  }
  if (r['len'] !== undefined) {
    const m = Number(r['len']);
    list.push({ rule: 'bytes.len', ok: (n) => n === m, msg: () => `must be exactly ${m} byte(s)` });
  }
  if (r['ip'] === true)
    list.push({ rule: 'bytes.ip', ok: (n) => n === 4 || n === 16, msg: () => 'must be a 4 or 16 byte IP address' });
  if (r['ipv4'] === true)
    list.push({ rule: 'bytes.ipv4', ok: (n) => n === 4, msg: () => 'must be a 4 byte IPv4 address' });
  if (r['ipv6'] === true)
    list.push({ rule: 'bytes.ipv6', ok: (n) => n === 16, msg: () => 'must be a 16 byte IPv6 address' });
  if (list.length === 0) return null;
  const ignoreEmpty = r['ignore_empty'] === true;
  return (v, ctx) => {
    const n = bytesLength(v);
    if (ignoreEmpty && n === 0) return;
    runRules(list, n, ctx);
  };
}

/**
 * Compiles the rules for one scalar (non-message) value of `scalarType` (a protobuf scalar type
 * name or an Enum). Returns null when there are no rules. The returned check receives the raw
 * value (missing → default).
 */
function compileScalar(
  scalarType: string,
  enumType: protobuf.Enum | null,
  rules: RulesObj | undefined,
): ElemCheck | null {
  if (!rules) return null;
  if (enumType) return compileEnum(enumType, rules);
  if (scalarType === 'string') {
    const r = rules['string'] as RulesObj | undefined;
    if (!r) return null;
    const list = compileString(r);
    if (list.length === 0) return null;
    const ignoreEmpty = r['ignore_empty'] === true;
    const check = (v: unknown, ctx: Ctx): void => {
      const s = typeof v === 'string' ? v : v == null ? '' : String(v);
      if (ignoreEmpty && s === '') return;
      runRules(list, s, ctx);
    };
    return withInline(check, (g, v) => {
      const s = g.v();
      return (
        `{ const ${s} = typeof ${v} === 'string' ? ${v} : ${v} == null ? '' : String(${v});\n` +
        `if (${ignoreEmpty ? `${s} !== '' && ` : ''}!(${rulesJs(list, s, g)})) return false; }\n`
      );
    });
  }
  if (scalarType === 'bool') {
    const r = rules['bool'] as RulesObj | undefined;
    if (!r || r['const'] === undefined) return null;
    const c = r['const'] === true;
    return (v, ctx) => {
      if (Boolean(v) !== c) ctx.report('bool.const', `must be ${c}`);
    };
  }
  if (scalarType === 'bytes') return compileBytes(rules);
  if (NUMERIC_FAMILIES[scalarType]) {
    const r = rules[scalarType] as RulesObj | undefined;
    if (!r) return null;
    const list = compileRange<number>(scalarType, r, toNum, numCmp, String);
    if (list.length === 0) return null;
    const ignoreEmpty = r['ignore_empty'] === true;
    const check = (v: unknown, ctx: Ctx): void => {
      const n = v == null ? 0 : toNum(v);
      if (ignoreEmpty && n === 0) return;
      runRules(list, n, ctx);
    };
    return withInline(check, (g, v) => {
      const n = g.v();
      return (
        `{ const ${n} = ${v} == null ? 0 : typeof ${v} === 'number' ? ${v} : ${g.c(toNum)}(${v});\n` +
        `if (${ignoreEmpty ? `${n} !== 0 && ` : ''}!(${rulesJs(list, n, g)})) return false; }\n`
      );
    });
  }
  return null;
}

// ---------------------------------------------------------------- plans

interface FieldPlan {
  field: protobuf.Field;
  name: string;
  seg: string; // '.name'
  /** Oneof member / proto3 optional: rules apply only when set. */
  presence: boolean;
  /** Check even when absent (scalar rules, repeated/map counts, required). */
  always: boolean;
  check: (v: unknown, present: boolean, ctx: Ctx) => void;
  /** `check`'s verdict as code for `localRules`, where the literal visit calls it. */
  inline?: Inline | undefined;
}

interface OneofPlan {
  seg: string;
  names: string[];
}

interface TypePlan {
  type: protobuf.Type;
  /** Every field with work. */
  fields: FieldPlan[];
  /** Fields checked even when absent. */
  always: FieldPlan[];
  /** Fields checked only when present, by name (for iterating a sparse plain object's keys). */
  byName: Record<string, FieldPlan | undefined>;
  requiredOneofs: OneofPlan[];
  isAny: boolean;
  /** No field is named like an Object.prototype member: an object literal's fields can be read directly. */
  byField: boolean;
  /** The unrolled visit of an object literal's fields (when `byField`). */
  visitLiteral: VisitFields;
}

const plans = new WeakMap<protobuf.Type, TypePlan>();
/** The plans of the rules on a message's own fields only (`localRules`). */
const localPlans = new WeakMap<protobuf.Type, TypePlan>();
/** Whether visiting a message of a type can find anything (rules or Any payloads), transitively. */
const workCache = new WeakMap<protobuf.Type, boolean>();

function isDisabled(t: protobuf.Type): boolean {
  return boolOpt(t as never, '(validate.disabled)') || boolOpt(t as never, '(validate.ignored)');
}

function fieldRules(f: protobuf.Field): RulesObj | undefined {
  return mergeRules(f.parsedOptions as Array<Record<string, unknown>> | undefined, '(validate.rules)');
}

/** Computes workCache for every type reachable from `root` (fixed point, cycle safe). */
function computeWork(root: protobuf.Type): void {
  if (workCache.has(root)) return;
  const seen: protobuf.Type[] = [];
  const set = new Set<protobuf.Type>();
  const stack = [root];
  while (stack.length) {
    const t = stack.pop() as protobuf.Type;
    if (set.has(t) || workCache.has(t)) continue;
    set.add(t);
    seen.push(t);
    for (const f of t.fieldsArray) {
      const mt = elemMessageType(f);
      if (mt) stack.push(mt);
    }
  }
  const direct = new Map<protobuf.Type, boolean>();
  for (const t of seen) {
    let w = false;
    if (fullNameOf(t) === '.google.protobuf.Any') w = true;
    else if (!isDisabled(t)) {
      for (const o of t.oneofsArray) if (boolOpt(o as never, '(validate.required)')) w = true;
      for (const f of t.fieldsArray) if (fieldRules(f)) w = true;
    }
    direct.set(t, w);
  }
  let changed = true;
  while (changed) {
    changed = false;
    for (const t of seen) {
      if (direct.get(t) || isDisabled(t)) continue;
      for (const f of t.fieldsArray) {
        const mt = elemMessageType(f);
        if (mt && (direct.get(mt) ?? workCache.get(mt))) {
          direct.set(t, true);
          changed = true;
          break;
        }
      }
    }
  }
  for (const t of seen) workCache.set(t, direct.get(t) === true);
}

/** Whether a message of type `t` can hold anything to check (rules or Any payloads). */
export function typeHasWork(t: protobuf.Type): boolean {
  let w = workCache.get(t);
  if (w === undefined) {
    computeWork(t);
    w = workCache.get(t) === true;
  }
  return w;
}

/** Element check for one present message value of `mt` with the element's own rules. */
/**
 * `deep`: the check visits the message's own fields too (a full visit); else only the rules on the
 * value itself (the caller visits the message's fields, as the checked encoder does).
 */
function compileMessageElem(mt: protobuf.Type, rules: RulesObj | undefined, deep: boolean): ElemCheck | null {
  const full = fullNameOf(mt);
  const msgRules = rules?.['message'] as RulesObj | undefined;
  const skip = msgRules?.['skip'] === true;
  const checks: ElemCheck[] = [];
  const wrapperFamily = WRAPPER_FAMILY[full];
  if (wrapperFamily && rules) {
    const inner = compileScalar(wrapperFamily, null, rules);
    if (inner) {
      const check = (v: unknown, ctx: Ctx): void => inner((v as Record<string, unknown>)['value'], ctx);
      checks.push(
        withInline(check, (g, v) => {
          const w = g.v();
          return `{ const ${w} = ${v}['value'];\n${callOr(g, inner, w)}}\n`;
        }),
      );
    }
  }
  if ((full === '.google.protobuf.Duration' || full === '.google.protobuf.Timestamp') && rules) {
    const family = full === '.google.protobuf.Duration' ? 'duration' : 'timestamp';
    const r = rules[family] as RulesObj | undefined;
    if (r) {
      const list = compileRange<SecNanos>(family, r, toSecNanos, snCmp, fmtSecNanos);
      if (family === 'timestamp') {
        const nowSn = (): SecNanos => {
          const ms = Date.now();
          return { s: Math.floor(ms / 1000), n: (ms % 1000) * 1e6 };
        };
        if (r['lt_now'] === true)
          list.push({ rule: 'timestamp.lt_now', ok: (v) => snCmp(v, nowSn()) < 0, msg: () => 'must be in the past' });
        if (r['gt_now'] === true)
          list.push({ rule: 'timestamp.gt_now', ok: (v) => snCmp(v, nowSn()) > 0, msg: () => 'must be in the future' });
        if (r['within'] !== undefined) {
          const w = toSecNanos(r['within']);
          const wsec = w.s + w.n / 1e9;
          list.push({
            rule: 'timestamp.within',
            ok: (v) => Math.abs(v.s + v.n / 1e9 - Date.now() / 1000) <= wsec,
            msg: () => `must be within ${fmtSecNanos(w)} of now`,
          });
        }
      }
      if (list.length) checks.push((v, ctx) => runRules(list, toSecNanos(v), ctx));
    }
  }
  if (full === '.google.protobuf.Any' && rules) {
    const r = rules['any'] as RulesObj | undefined;
    const urlOf = (v: unknown): string => {
      const o = v as Record<string, unknown>;
      return String(o['@type'] ?? o['type_url'] ?? o['typeUrl'] ?? '');
    };
    if (r && Array.isArray(r['in'])) {
      const s = new Set((r['in'] as unknown[]).map(String));
      checks.push((v, ctx) => {
        if (!s.has(urlOf(v))) ctx.report('any.in', `type ${show(urlOf(v))} must be one of ${[...s].join(', ')}`);
      });
    }
    if (r && Array.isArray(r['not_in'])) {
      const s = new Set((r['not_in'] as unknown[]).map(String));
      checks.push((v, ctx) => {
        if (s.has(urlOf(v))) ctx.report('any.not_in', `type ${show(urlOf(v))} is not allowed`);
      });
    }
  }
  if (deep && !skip && typeHasWork(mt)) {
    // The plan of `mt` is resolved on first use: recursive types compile lazily.
    let plan: TypePlan | undefined;
    checks.push((v, ctx) => visitPlan((plan ??= planOf(mt)), v, ctx));
  }
  if (checks.length === 0) return null;
  if (checks.length === 1) return checks[0] as ElemCheck;
  const all = (v: unknown, ctx: Ctx): void => {
    for (let i = 0; i < checks.length; i++) (checks[i] as ElemCheck)(v, ctx);
  };
  return withInline(all, (g, v) => checks.map((c) => callOr(g, c, v)).join(''));
}

function compileElem(f: protobuf.Field, rules: RulesObj | undefined, deep: boolean): ElemCheck | null {
  const mt = elemMessageType(f);
  if (mt) return compileMessageElem(mt, rules, deep);
  return compileScalar(f.type, enumOf(f), rules);
}

function requiredFlag(rules: RulesObj | undefined): { required: boolean; family: string } {
  if (!rules) return { required: false, family: '' };
  if ((rules['message'] as RulesObj | undefined)?.['required'] === true)
    return { required: true, family: 'message.required' };
  if ((rules['duration'] as RulesObj | undefined)?.['required'] === true)
    return { required: true, family: 'duration.required' };
  if ((rules['timestamp'] as RulesObj | undefined)?.['required'] === true)
    return { required: true, family: 'timestamp.required' };
  if ((rules['any'] as RulesObj | undefined)?.['required'] === true) return { required: true, family: 'any.required' };
  return { required: false, family: '' };
}

/** A map field: min_pairs / max_pairs / no_sparse, and the key and value rules of each entry. */
function compileMapField(f: protobuf.Field, rules: RulesObj | undefined, deep: boolean): FieldPlan | null {
  const name = f.name;
  const seg = '.' + name;
  const presence = f.partOf != null;
  const mr = rules?.['map'] as RulesObj | undefined;
  const keyCheck = compileScalar(
    (f as unknown as protobuf.MapField).keyType,
    null,
    mr?.['keys'] as RulesObj | undefined,
  );
  const valCheck = compileElem(f, mr?.['values'] as RulesObj | undefined, deep);
  const minPairs = mr?.['min_pairs'] !== undefined ? Number(mr['min_pairs']) : 0;
  const maxPairs = mr?.['max_pairs'] !== undefined ? Number(mr['max_pairs']) : Infinity;
  const ignoreEmpty = mr?.['ignore_empty'] === true;
  const noKeys = mr?.['no_sparse'] === true;
  if (!keyCheck && !valCheck && minPairs === 0 && maxPairs === Infinity) return null;
  return {
    field: f,
    name,
    seg,
    presence,
    always: minPairs > 0,
    check: (v, _present, ctx) => {
      const obj = (v ?? {}) as Record<string, unknown>;
      if (minPairs > 0 || maxPairs !== Infinity || ignoreEmpty) {
        let n = 0;
        for (const _k in obj) n++;
        if (ignoreEmpty && n === 0) return;
        if (n < minPairs)
          ctx.report('map.min_pairs', `must have at least ${minPairs} entr${minPairs === 1 ? 'y' : 'ies'}`);
        if (n > maxPairs) ctx.report('map.max_pairs', `must have at most ${maxPairs} entries`);
      }
      if (!keyCheck && !valCheck) return;
      for (const k in obj) {
        const seg = new MapKey(k);
        ctx.path.push(seg);
        if (keyCheck) keyCheck(k, ctx);
        const x = obj[k];
        if (valCheck && (x != null || !elemMessageType(f))) valCheck(x, ctx);
        else if (noKeys && x == null) ctx.report('map.no_sparse', 'map values must not be unset');
        ctx.path.pop();
      }
    },
  };
}

/** A repeated field: min_items / max_items / unique, and the item rules of each element. */
function compileRepeatedField(f: protobuf.Field, rules: RulesObj | undefined, deep: boolean): FieldPlan | null {
  const name = f.name;
  const seg = '.' + name;
  const presence = f.partOf != null;
  const rr = rules?.['repeated'] as RulesObj | undefined;
  const itemCheck = compileElem(f, rr?.['items'] as RulesObj | undefined, deep);
  const minItems = rr?.['min_items'] !== undefined ? Number(rr['min_items']) : 0;
  const maxItems = rr?.['max_items'] !== undefined ? Number(rr['max_items']) : Infinity;
  const unique = rr?.['unique'] === true;
  const ignoreEmpty = rr?.['ignore_empty'] === true;
  if (!itemCheck && minItems === 0 && maxItems === Infinity && !unique) return null;
  const inline: Inline | undefined = unique
    ? undefined
    : (g, v) => {
        const [a, n, i] = [g.v(), g.v(), g.v()];
        const x = g.v();
        const items = itemCheck
          ? `for (let ${i} = 0; ${i} < ${n}; ${i}++) { const ${x} = ${a}[${i}];\n${callOr(g, itemCheck, x)}}\n`
          : '';
        return (
          `{ const ${a} = Array.isArray(${v}) ? ${v} : ${v} == null ? [] : [${v}]; const ${n} = ${a}.length;\n` +
          `if (${ignoreEmpty ? `${n} !== 0` : 'true'}) {\n` +
          `if (${n} < ${g.c(minItems)} || ${n} > ${g.c(maxItems)}) return false;\n` +
          `${items}} }\n`
        );
      };
  return {
    field: f,
    name,
    seg,
    presence,
    always: minItems > 0,
    inline,
    check: (v, _present, ctx) => {
      const arr = (Array.isArray(v) ? v : v == null ? [] : [v]) as unknown[];
      const n = arr.length;
      if (ignoreEmpty && n === 0) return;
      if (n < minItems)
        ctx.report('repeated.min_items', `must have at least ${minItems} item(s)${n ? ` (has ${n})` : ''}`);
      if (n > maxItems) ctx.report('repeated.max_items', `must have at most ${maxItems} item(s) (has ${n})`);
      if (unique && n > 1) {
        const s = new Set<string>();
        for (let i = 0; i < n; i++) {
          const key = typeof arr[i] === 'object' ? JSON.stringify(arr[i]) : String(arr[i]);
          if (s.has(key)) ctx.report('repeated.unique', `items must be unique (duplicate ${show(arr[i])})`, i);
          s.add(key);
        }
      }
      if (itemCheck) {
        for (let i = 0; i < n; i++) {
          ctx.path.push(i);
          itemCheck(arr[i], ctx);
          ctx.path.pop();
        }
      }
    },
  };
}

function compileField(f: protobuf.Field, deep: boolean): FieldPlan | null {
  const rules = fieldRules(f);
  const name = f.name;
  const seg = '.' + name;
  const presence = f.partOf != null;
  if (f.map) return compileMapField(f, rules, deep);
  if (f.repeated) return compileRepeatedField(f, rules, deep);
  const mt = elemMessageType(f);
  if (mt) {
    const req = requiredFlag(rules);
    // PGV: rules of a oneof member (required included) apply only when that member is the one set.
    const required = req.required && f.partOf == null;
    const family = req.family;
    const elem = compileMessageElem(mt, rules, deep);
    if (!required && !elem) return null;
    return {
      field: f,
      name,
      seg,
      presence: true,
      always: required,
      inline: (g, v) => (required ? `if (${v} == null) return false;\n` : '') + (elem ? callOr(g, elem, v) : ''),
      check: (v, present, ctx) => {
        if (!present) {
          if (required) ctx.report(family, `is required (${mt.name})`);
          return;
        }
        if (elem) elem(v, ctx);
      },
    };
  }
  const sc = compileScalar(f.type, enumOf(f), rules);
  if (!sc) return null;
  return {
    field: f,
    name,
    seg,
    presence,
    always: !presence,
    inline: (g, v) => callOr(g, sc, v),
    check: (v, present, ctx) => {
      if (presence && !present) return;
      sc(v, ctx);
    },
  };
}

function planOf(type: protobuf.Type, deep = true): TypePlan {
  const cache = deep ? plans : localPlans;
  let p = cache.get(type);
  if (p) return p;
  // Register first: recursive types reach planOf again only through closures, lazily.
  p = {
    type,
    fields: [],
    always: [],
    byName: Object.create(null) as Record<string, FieldPlan | undefined>,
    requiredOneofs: [],
    isAny: fullNameOf(type) === '.google.protobuf.Any',
    byField: type.fieldsArray.every((f) => !(f.name in Object.prototype)),
    visitLiteral: () => true,
  };
  cache.set(type, p);
  if (p.isAny || isDisabled(type)) return p;
  for (const f of type.fieldsArray) {
    const fp = compileField(f, deep);
    if (!fp) continue;
    p.fields.push(fp);
    if (fp.always) p.always.push(fp);
    else p.byName[fp.name] = fp;
  }
  for (const o of type.oneofsArray) {
    if (boolOpt(o as never, '(validate.required)'))
      p.requiredOneofs.push({ seg: '.' + o.name, names: o.oneof.slice() });
  }
  if (p.byField) p.visitLiteral = generatedVisit(p.fields);
  return p;
}

/** Checks the rules of `value` (a message of `type`), reporting into `ctx`. */
export function visitMessage(type: protobuf.Type, value: unknown, ctx: Ctx): void {
  visitPlan(planOf(type), value, ctx);
}

function visitPlan(plan: TypePlan, value: unknown, ctx: Ctx): void {
  if (typeof value !== 'object' || value === null) return;
  const obj = value as Record<string, unknown>;
  if (plan.isAny) {
    visitAny(obj, ctx);
    return;
  }
  if (plan.byField && Object.getPrototypeOf(value) === Object.prototype) {
    // Object literal, fast path: read the few fields with work instead of enumerating every key. It
    // reports in field order; on a defect the ordered visit reruns, so issues keep the object's order.
    const before = ctx.issues.length;
    const depth = ctx.path.length;
    let clean: boolean;
    try {
      clean = plan.visitLiteral(obj, plan.fields, ctx) && ctx.issues.length === before;
    } catch {
      // Malformed input a check cannot read: the ordered visit reports (and throws) as it always did.
      clean = false;
      ctx.path.length = depth;
    }
    if (!clean) {
      ctx.issues.length = before;
      visitPlainOrdered(plan, obj, ctx);
    }
  } else if (value instanceof protobuf.Message) {
    // Decoded message: defaults live on the prototype, set fields are own properties.
    const fields = plan.fields;
    for (let i = 0; i < fields.length; i++) {
      const fp = fields[i] as FieldPlan;
      const v = obj[fp.name];
      const present = v != null && hasOwn(obj, fp.name);
      if (!present && !fp.always) continue;
      ctx.path.push(fp.seg);
      fp.check(v, present, ctx);
      ctx.path.pop();
    }
  } else visitPlainOrdered(plan, obj, ctx);
  const oneofs = plan.requiredOneofs;
  for (let i = 0; i < oneofs.length; i++) {
    const o = oneofs[i] as OneofPlan;
    if (!oneofSet(o, obj)) ctx.report('oneof.required', `exactly one of ${o.names.join(', ')} must be set`, o.seg);
  }
}

function oneofSet(o: OneofPlan, obj: Record<string, unknown>): boolean {
  const names = o.names;
  for (let j = 0; j < names.length; j++) if (isPresent(obj, names[j] as string)) return true;
  return false;
}

/** A Ctx that only records that something was reported: the checks' verdict, without issues or paths. */
class Probe extends Ctx {
  failed = false;
  override report(): void {
    this.failed = true;
  }
}
const probe = new Probe();

/** Whether a plain object (of one type) breaks none of the rules on its own fields. */
export type LocalRules = (obj: Record<string, unknown>) => boolean;
const localChecks = new WeakMap<protobuf.Type, LocalRules | null>();
const NEVER: LocalRules = () => false;

/**
 * The rules of `type` on its own fields and oneofs, applied to a plain object without visiting its
 * sub-messages (their own rules are the caller's to apply, message by message) and without issues:
 * true means the full visit reports nothing on this message's fields. Null: the type has no such rule.
 * Conservative where unsure (a field named like an Object.prototype member): always false.
 */
export function localRules(type: protobuf.Type): LocalRules | null {
  let c = localChecks.get(type);
  if (c !== undefined) return c;
  const plan = planOf(type, false);
  if (plan.fields.length === 0 && plan.requiredOneofs.length === 0) c = null;
  else if (!plan.byField) c = NEVER;
  else {
    c = generatedProbe(plan);
  }
  localChecks.set(type, c);
  return c;
}

/**
 * The rules of `plan` as one generated function for `localRules`: each field's checks inlined
 * where they say how (a call site per rule, which V8 can inline), else a call of the field's check
 * on the probe context. No issue, no path: false at the first check that would report.
 */
function generatedProbe(plan: TypePlan): LocalRules {
  const g = new Gen();
  // A check that threw (on malformed input) may have left its path segment.
  let body = `const ctx = ${g.c(probe)};\nctx.failed = false;\nif (ctx.path.length !== 0) ctx.path.length = 0;\n`;
  for (const fp of plan.fields) {
    const v = g.v();
    const code = fp.inline
      ? fp.inline(g, v)
      : `${g.c(fp)}.check(${v}, ${fp.always ? `${v} != null` : 'true'}, ctx); if (ctx.failed) return false;\n`;
    body += `{ const ${v} = m[${JSON.stringify(fp.name)}];\n${fp.always ? code : `if (${v} != null) {\n${code}}\n`}}\n`;
  }
  const set = g.c(oneofSet);
  for (const o of plan.requiredOneofs) body += `if (!${set}(${g.c(o)}, m)) return false;\n`;
  const decls = g.consts.map((_c, i) => `const C${i} = C[${i}];\n`).join('');
  const make = new Function('C', `${decls}return function probe(m) {\n${body}return true;\n};`) as (
    c: unknown[],
  ) => LocalRules;
  return make(g.consts);
}

type VisitFields = (m: Record<string, unknown>, F: readonly FieldPlan[], ctx: Ctx) => boolean;

/**
 * The fields with work of one type, unrolled for object literals: one load per field by constant name,
 * which V8 caches per object shape (a keyed load per field or per key is most of the visit otherwise).
 * Names are protobuf identifiers, embedded as JSON string literals. Reports in field order.
 */
function generatedVisit(fields: readonly FieldPlan[]): VisitFields {
  let body = 'let v;\nconst p = ctx.path;\n';
  fields.forEach((fp, i) => {
    const load = `v = m[${JSON.stringify(fp.name)}]`;
    const call = `p.push(F[${i}].seg); F[${i}].check(v, ${fp.always ? 'v != null' : 'true'}, ctx); p.pop();\n`;
    body += fp.always ? `${load}; ${call}` : `if ((${load}) != null) { ${call}}\n`;
  });
  return new Function('m', 'F', 'ctx', body + 'return true;') as VisitFields;
}

/** Plain object: the always-checked fields, then only the keys actually present, in the object's order. */
function visitPlainOrdered(plan: TypePlan, obj: Record<string, unknown>, ctx: Ctx): void {
  const always = plan.always;
  for (let i = 0; i < always.length; i++) {
    const fp = always[i] as FieldPlan;
    const v = obj[fp.name];
    ctx.path.push(fp.seg);
    fp.check(v, v != null, ctx);
    ctx.path.pop();
  }
  const byName = plan.byName;
  for (const key in obj) {
    const fp = byName[key];
    if (fp === undefined) continue;
    const v = obj[key];
    if (v == null) continue;
    ctx.path.push(fp.seg);
    fp.check(v, true, ctx);
    ctx.path.pop();
  }
}

function visitAny(obj: Record<string, unknown>, ctx: Ctx): void {
  const atType = obj['@type'];
  if (typeof atType === 'string') {
    const t = typeOfAnyUrl(atType);
    if (!t || !typeHasWork(t)) return;
    ctx.path.push(`(${t.name})`);
    visitMessage(t, obj, ctx);
    ctx.path.pop();
    return;
  }
  const url = obj['type_url'] ?? obj['typeUrl'];
  const bytes = obj['value'];
  if (typeof url === 'string' && bytes instanceof Uint8Array) {
    const t = typeOfAnyUrl(url);
    if (!t || !typeHasWork(t)) return;
    let decoded: protobuf.Message;
    try {
      decoded = t.decode(bytes);
    } catch (e) {
      ctx.report('any.decode', `payload does not decode as ${t.name}: ${(e as Error).message}`);
      return;
    }
    ctx.path.push(`(${t.name})`);
    visitMessage(t, decoded, ctx);
    ctx.path.pop();
  }
}

/** PGV rules only, over a decoded protobufjs message or a plain object in fromObject form. */
export function checkRules(type: protobuf.Type, message: protobuf.Message | ProtoObject): ValidationIssue[] {
  const ctx = new Ctx();
  if (typeHasWork(type)) visitMessage(type, message, ctx);
  return ctx.issues;
}
