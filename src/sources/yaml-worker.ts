// YAML parsing off the event loop that serves xDS and ext_authz: one worker thread, requests
// answered in order. A worker that dies (out of memory on a hostile file) fails that file only and
// is replaced on the next request.
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

export class YamlParser {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { name: string; resolve: (p: Parsed) => void }>();

  constructor(private readonly heapMb = 512) {}

  private start(): Worker {
    const w = new Worker(new URL(import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: this.heapMb } });
    w.on('message', (m: { id: number; result?: Parsed; error?: string }) => {
      const job = this.waiting.get(m.id);
      if (job === undefined) return;
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) w.unref();
      job.resolve(m.result ?? failed(job.name, `cannot parse: ${m.error ?? 'unknown error'}`));
    });
    const dead = (why: string): void => {
      if (this.worker === w) this.worker = undefined;
      for (const [id, job] of this.waiting) {
        this.waiting.delete(id);
        job.resolve(failed(job.name, why));
      }
    };
    w.on('error', (e) => dead(`cannot parse: ${e.message}`));
    w.on('exit', () => dead('cannot parse: the parser stopped (file too large or too complex?)'));
    return w;
  }

  parse(name: string, text: string): Promise<Parsed> {
    const w = (this.worker ??= this.start());
    const id = this.nextId++;
    // A parse in progress keeps the process alive; an idle parser does not.
    if (this.waiting.size === 0) w.ref();
    return new Promise((resolve) => {
      this.waiting.set(id, { name, resolve });
      w.postMessage({ id, name, text } satisfies Job);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w !== undefined) await w.terminate();
  }
}

function failed(file: string, message: string): Parsed {
  return { objects: [], errors: [{ code: 'OXDS_YAML_PARSE', message, file, doc: 0, severity: 'error' }] };
}
