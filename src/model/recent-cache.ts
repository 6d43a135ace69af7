// A bounded memo that keeps its working set (see RecentCache).

/**
 * A map of at most `2 × perGeneration` entries that keeps what was used recently: entries live in
 * the current generation or the previous one; a hit in the previous one moves it to the current, and
 * when the current is full it becomes the previous (the older one is dropped). So a working set up to
 * `perGeneration` is never evicted, whatever its order of use, where clearing a full map would make
 * every rebuild of a larger set start over.
 */
export class RecentCache<K, V> {
  private current = new Map<K, V>();
  private previous = new Map<K, V>();

  constructor(private readonly perGeneration: number) {}

  get(key: K): V | undefined {
    const v = this.current.get(key);
    if (v !== undefined || this.current.has(key)) return v;
    if (!this.previous.has(key)) return undefined;
    const old = this.previous.get(key) as V;
    this.set(key, old);
    return old;
  }

  set(key: K, value: V): void {
    if (this.current.size >= this.perGeneration && !this.current.has(key)) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, value);
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }
}
