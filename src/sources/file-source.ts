// The embedded default source: a directory of YAML files, watched.
// Only changed files are re-parsed (mtime + size); a file that stops parsing keeps serving its
// last good objects (reported as an error) so a half-written file never drops live config.
import fs from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import type { ConfigError, ConfigView, StoredObject } from '../model/types.js';
import { JSON_EXT, jsonFileNotice, parseYamlFile } from './yaml.js';

interface FileEntry {
  mtimeMs: number;
  size: number;
  objects: StoredObject[];
  errors: ConfigError[];
}

const YAML_EXT = /\.ya?ml$/i;

export async function listYamlFiles(dir: string, json?: string[]): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    const entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile() && YAML_EXT.test(e.name)) out.push(r);
      else if (e.isFile() && JSON_EXT.test(e.name)) json?.push(r);
    }
  }
  await walk('');
  return out.sort();
}

export interface FileSourceOptions {
  dir: string;
  /** Safety-net rescan period (ms) in case a watch event is missed. */
  rescanMs?: number;
}

/** Emits 'change' whenever the set of objects may have changed. */
export class FileSource extends EventEmitter {
  private readonly files = new Map<string, FileEntry>();
  private readonly firstSeen = new Map<string, number>();
  private seq = 0;
  private watcher: FSWatcher | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private dirError: ConfigError | undefined;
  /** `.json` files seen (not read): each gets a notice pointing at `import`. */
  private jsonFiles: string[] = [];

  constructor(private readonly opts: FileSourceOptions) {
    super();
  }

  private scanChain: Promise<unknown> = Promise.resolve();

  /**
   * Scans the directory, re-parsing only files that changed. Returns true if anything changed.
   * Scans never overlap: a call made while another scan runs starts after it, so a slow
   * background scan cannot put back a file that a later scan saw deleted.
   */
  scan(): Promise<boolean> {
    const run = this.scanChain.then(() => this.scanOnce());
    this.scanChain = run.catch(() => undefined);
    return run;
  }

  private async scanOnce(): Promise<boolean> {
    let names: string[];
    // A directory that is readable again is a change even if no file changed: the error it
    // reported must be cleared (and the recovery logged) by a rebuild.
    let recovered = false;
    let jsonChanged = false;
    try {
      const json: string[] = [];
      names = await listYamlFiles(this.opts.dir, json);
      jsonChanged = json.sort().join('\n') !== this.jsonFiles.join('\n'); // a notice to publish or clear
      this.jsonFiles = json;
      recovered = this.dirError !== undefined;
      this.dirError = undefined;
      if (recovered) this.emit('recovered');
    } catch (err) {
      // Unreadable directory: keep serving what we had, report it.
      const message = `cannot read config directory ${this.opts.dir}: ${(err as Error).message}`;
      const changed = this.dirError?.message !== message;
      this.dirError = { code: 'OXDS_YAML_PARSE', message, severity: 'error', file: this.opts.dir };
      return changed;
    }
    let changed = recovered || jsonChanged;
    const present = new Set(names);
    for (const name of [...this.files.keys()]) {
      if (!present.has(name)) {
        this.files.delete(name);
        changed = true;
      }
    }
    for (const name of names) {
      const full = path.join(this.opts.dir, name);
      let st;
      try {
        st = await fs.stat(full);
      } catch {
        continue; // vanished between readdir and stat
      }
      const prev = this.files.get(name);
      if (prev && prev.mtimeMs === st.mtimeMs && prev.size === st.size) continue;
      let text: string;
      try {
        text = await fs.readFile(full, 'utf8');
      } catch {
        continue;
      }
      const parsed = parseYamlFile(name, text, 0);
      const hardYamlError = parsed.errors.some((e) => e.code === 'OXDS_YAML_PARSE');
      // A file that does not parse keeps its last good objects.
      const objects = hardYamlError && prev ? prev.objects : parsed.objects;
      for (const o of objects) {
        let s = this.firstSeen.get(o.key);
        if (s === undefined) {
          s = ++this.seq;
          this.firstSeen.set(o.key, s);
        }
        o.origin.seq = s;
      }
      this.files.set(name, { mtimeMs: st.mtimeMs, size: st.size, objects, errors: parsed.errors });
      changed = true;
    }
    return changed;
  }

  view(): ConfigView {
    const objects: StoredObject[] = [];
    const loadErrors: ConfigError[] = [];
    if (this.dirError) loadErrors.push(this.dirError);
    loadErrors.push(...this.jsonFiles.map(jsonFileNotice));
    for (const [, f] of [...this.files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      objects.push(...f.objects);
      loadErrors.push(...f.errors);
    }
    return { objects, loadErrors };
  }

  /** Starts watching; emits 'change' after each scan that found something new. */
  async start(): Promise<void> {
    await this.scan();
    const onEvent = (): void => this.requestScan();
    try {
      this.watcher = watch(this.opts.dir, { recursive: true }, onEvent);
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      this.watcher = undefined; // fall back to the periodic rescan
    }
    this.rescanTimer = setInterval(onEvent, this.opts.rescanMs ?? (this.watcher ? 5000 : 1000));
    this.rescanTimer.unref();
  }

  private scanning = false;
  private rescanAgain = false;

  /** Serialises scans: events arriving during a scan cause exactly one more scan. */
  requestScan(): void {
    if (this.scanning) {
      this.rescanAgain = true;
      return;
    }
    this.scanning = true;
    void this.scan()
      .then((c) => {
        if (c) this.emit('change');
      }, (err: unknown) => this.emit('error', err))
      .finally(() => {
        this.scanning = false;
        if (this.rescanAgain) {
          this.rescanAgain = false;
          this.requestScan();
        }
      });
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.rescanTimer = undefined;
  }
}
