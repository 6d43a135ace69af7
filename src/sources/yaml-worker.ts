// YAML parsing off the event loop that serves xDS and ext_authz: worker threads, each request
// answered on its own. A worker that dies (out of memory on a hostile file) fails that file only and
// is replaced on the next request.
import os from 'node:os';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { parseYamlFile } from './yaml.js';
import type { ConfigError, StoredObject } from '../model/types.js';

export interface Parsed {
  objects: StoredObject[];
  errors: ConfigError[];
}

interface Job {
  id: number;
  name: string;
  text: string;
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  port.on('message', (j: Job) => {
    try {
      port.postMessage({ id: j.id, result: parseYamlFile(j.name, j.text, 0) });
    } catch (e) {
      port.postMessage({ id: j.id, error: e instanceof Error ? e.message : String(e) });
    }
  });
}

interface Slot {
  worker: Worker;
  waiting: Map<number, { name: string; resolve: (p: Parsed) => void }>;
}

/**
 * Up to `size` worker threads (one per core, at most two by default): a second worker starts only
 * when a file is sent while every worker already has one, so a one-file change uses one thread and
 * a directory load parses two files at a time. Each answer goes to its own request.
 */
export class YamlParser {
  private slots: Slot[] = [];
  private nextId = 1;

  constructor(
    private readonly heapMb = 512,
    private readonly size = Math.max(1, Math.min(2, os.availableParallelism())),
  ) {}

  private start(): Slot {
    const w = new Worker(new URL(import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: this.heapMb } });
    const slot: Slot = { worker: w, waiting: new Map() };
    w.on('message', (m: { id: number; result?: Parsed; error?: string }) => {
      const job = slot.waiting.get(m.id);
      if (job === undefined) return;
      slot.waiting.delete(m.id);
      if (slot.waiting.size === 0) w.unref();
      job.resolve(m.result ?? failed(job.name, `cannot parse: ${m.error ?? 'unknown error'}`));
    });
    const dead = (why: string): void => {
      this.slots = this.slots.filter((s) => s !== slot);
      for (const [id, job] of slot.waiting) {
        slot.waiting.delete(id);
        job.resolve(failed(job.name, why));
      }
    };
    w.on('error', (e) => dead(`cannot parse: ${e.message}`));
    w.on('exit', () => dead('cannot parse: the parser stopped (file too large or too complex?)'));
    this.slots.push(slot);
    return slot;
  }

  /** An idle worker, else a new one while below `size`, else the least busy. */
  private pick(): Slot {
    let best: Slot | undefined;
    for (const s of this.slots) if (best === undefined || s.waiting.size < best.waiting.size) best = s;
    if (best !== undefined && (best.waiting.size === 0 || this.slots.length >= this.size)) return best;
    return this.start();
  }

  parse(name: string, text: string): Promise<Parsed> {
    const slot = this.pick();
    const id = this.nextId++;
    // A parse in progress keeps the process alive; an idle parser does not.
    if (slot.waiting.size === 0) slot.worker.ref();
    return new Promise((resolve) => {
      slot.waiting.set(id, { name, resolve });
      slot.worker.postMessage({ id, name, text } satisfies Job);
    });
  }

  async close(): Promise<void> {
    const slots = this.slots;
    this.slots = [];
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}

function failed(file: string, message: string): Parsed {
  return { objects: [], errors: [{ code: 'OXDS_YAML_PARSE', message, file, doc: 0, severity: 'error' }] };
}
