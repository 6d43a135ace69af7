// Debounce maths (pure) and a tiny scheduler around it.

/**
 * When should a rebuild run? `firstChangeAt` is the first change not yet built, `lastChangeAt`
 * the latest. We wait for `quietMs` without changes, but never longer than `maxMs` after the first.
 */
export function nextRunAt(firstChangeAt: number, lastChangeAt: number, quietMs: number, maxMs: number): number {
  return Math.min(lastChangeAt + quietMs, firstChangeAt + maxMs);
}

export class Debouncer {
  private first: number | undefined;
  private last = 0;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;

  constructor(
    private readonly run: () => Promise<void> | void,
    private readonly quietMs: number,
    private readonly maxMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a change and (re)schedules the run. */
  poke(): void {
    const t = this.now();
    if (this.first === undefined) this.first = t;
    this.last = t;
    if (this.running) {
      this.again = true;
      return;
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.first === undefined) return;
    if (this.timer) clearTimeout(this.timer);
    const delay = Math.max(0, nextRunAt(this.first, this.last, this.quietMs, this.maxMs) - this.now());
    this.timer = setTimeout(() => void this.fire(), delay);
    this.timer.unref?.();
  }

  private async fire(): Promise<void> {
    this.timer = undefined;
    this.first = undefined;
    await this.exclusive(this.run);
  }

  /** Settles when the run in progress ends. */
  private idle: Promise<void> = Promise.resolve();

  /**
   * Runs `fn` as one of the runs: never alongside another (it waits for the one in progress), and
   * pokes meanwhile schedule the next run after it (what the first build of a server goes through).
   */
  async exclusive(fn: () => Promise<void> | void): Promise<void> {
    while (this.running) await this.idle;
    this.running = true;
    let ended = (): void => undefined;
    this.idle = new Promise<void>((resolve) => (ended = resolve));
    try {
      await fn();
    } finally {
      this.running = false;
      ended();
      if (this.again) {
        this.again = false;
        if (this.first === undefined) this.first = this.now();
        this.schedule();
      }
    }
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.first = undefined;
  }
}
