// The embedded default source: a directory of YAML files, watched.
// Only changed files are re-parsed (mtime + size); a file that stops parsing keeps serving its
// last good objects (reported as an error) so a half-written file never drops live config.
import fs from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { EventEmitter } from 'node:events';
import type { ConfigError, ConfigView, StoredObject } from '../model/types.js';
import { listConfigFiles, DEFAULT_LIMITS, type ConfigLimits } from './config-files.js';
import { YamlParser, type Parsed } from './yaml-worker.js';

/**
 * Files read and parsed ahead of the one being taken in: enough that the parser stays busy while
 * this thread prepares the objects of the last file (FileSourceOptions.prepare).
 */
const PARSE_AHEAD = 8;
/** A scan that parsed at least this many bytes stops the parser worker (the next parse starts a new one). */
const RELEASE_PARSER_BYTES = 4 << 20;

interface FileEntry {
  mtimeMs: number;
  size: number;
  objects: StoredObject[];
  errors: ConfigError[];
}

export interface FileSourceOptions {
  dir: string;
  /** Safety-net rescan period (ms) in case a watch event is missed. */
  rescanMs?: number;
  /** Size bounds per file and in total. */
  limits?: ConfigLimits;
  /**
   * Work to do ahead of the next build on each file's objects as it is taken in, while the parser
   * works on the next files (the checks a build would run anyway, kept by the model).
   */
  prepare?: (objects: readonly StoredObject[]) => Promise<void>;
}

/** Emits 'change' whenever the set of objects may have changed. */
export class FileSource extends EventEmitter {
  private readonly files = new Map<string, FileEntry>();
  private readonly firstSeen = new Map<string, number>();
  private seq = 0;
  private watcher: FSWatcher | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private dirError: ConfigError | undefined;
  /** Files refused by the listing (link leaving the directory, too large). */
  private refused: ConfigError[] = [];
  private readonly parser = new YamlParser();

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
    let listing: Awaited<ReturnType<typeof listConfigFiles>>;
    // A directory that is readable again is a change even if no file changed: the error it
    // reported must be cleared (and the recovery logged) by a rebuild.
    let recovered = false;
    try {
      listing = await listConfigFiles(this.opts.dir, this.opts.limits ?? DEFAULT_LIMITS);
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
    let changed = recovered;
    const refusedKey = JSON.stringify(listing.errors);
    if (refusedKey !== JSON.stringify(this.refused)) changed = true;
    this.refused = listing.errors;
    const present = new Set(listing.files.map((f) => f.rel));
    for (const name of [...this.files.keys()]) {
      if (!present.has(name)) {
        this.files.delete(name);
        changed = true;
      }
    }
    const todo = listing.files.filter((st) => {
      const prev = this.files.get(st.rel);
      return !(prev && prev.mtimeMs === st.mtimeMs && prev.size === st.size);
    });
    // Reads and parses run PARSE_AHEAD files ahead of the file being applied: the parser works on
    // the next files while this thread reads and takes in the last ones (bounded: each file ≤ the size limit).
    const inFlight: Promise<Parsed | undefined>[] = [];
    const startAt = (i: number): void => {
      const st = todo[i];
      if (st !== undefined) inFlight[i] = this.readAndParse(st.rel, st.abs);
    };
    for (let i = 0; i < PARSE_AHEAD; i++) startAt(i);
    for (let i = 0; i < todo.length; i++) {
      const st = todo[i] as (typeof todo)[number];
      const parsed = await inFlight[i];
      delete inFlight[i];
      startAt(i + PARSE_AHEAD);
      if (parsed === undefined) continue;
      const objects = this.apply(st.rel, st, parsed);
      changed = true;
      if (this.opts.prepare !== undefined) await this.opts.prepare(objects);
    }
    // After a large load the worker's heap (the parse garbage of every file) would stay resident
    // through the model build and translate that follow, the peak of the process: let it go.
    if (todo.reduce((n, st) => n + st.size, 0) >= RELEASE_PARSER_BYTES) await this.parser.close();
    return changed;
  }

  /** A file's text parsed by the worker; undefined when it cannot be read (gone since the listing). */
  private async readAndParse(name: string, full: string): Promise<Parsed | undefined> {
    let text: string;
    try {
      text = await fs.readFile(full, 'utf8');
    } catch {
      return undefined;
    }
    return this.parser.parse(name, text);
  }

  /** Takes in a parsed file (in listing order, so first-seen sequence numbers stay deterministic). */
  private apply(name: string, st: { mtimeMs: number; size: number }, parsed: Parsed): StoredObject[] {
    const prev = this.files.get(name);
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
    return objects;
  }

  view(): ConfigView {
    const objects: StoredObject[] = [];
    const loadErrors: ConfigError[] = [];
    if (this.dirError) loadErrors.push(this.dirError);
    loadErrors.push(...this.refused);
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
      .then(
        (c) => {
          if (c) this.emit('change');
        },
        (err: unknown) => this.emit('error', err),
      )
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
    void this.parser.close();
  }
}
