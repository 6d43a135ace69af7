// Day / month boundaries in an IANA time zone, from Intl.DateTimeFormat parts, cached per minute
// (every real-world UTC offset is a whole number of minutes, so a minute never straddles a
// boundary).

export interface Periods {
  /** Local date `YYYY-MM-DD` (names the daily counter). */
  dayId: string;
  /** Epoch ms of the next local midnight (when the daily counter resets). */
  dayEndMs: number;
  /** Local month `YYYY-MM` (names the monthly counter). */
  monthId: string;
  /** Epoch ms of the next local 1st of the month, 00:00. */
  monthEndMs: number;
}

interface LocalParts {
  y: number;
  m: number; // 1-12
  d: number;
  h: number;
  mi: number;
}

const MINUTE = 60_000;

export class QuotaCalendar {
  readonly timeZone: string;
  private readonly fmt: Intl.DateTimeFormat;
  private cachedMinute = Number.NaN;
  private cached: Periods | undefined;

  /** Throws a RangeError for an unknown time zone name. */
  constructor(timeZone = 'UTC') {
    this.timeZone = timeZone;
    this.fmt = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
    });
  }

  periods(nowMs: number): Periods {
    const minute = Math.floor(nowMs / MINUTE);
    if (minute === this.cachedMinute && this.cached) return this.cached;
    const p = this.compute(minute * MINUTE);
    this.cachedMinute = minute;
    this.cached = p;
    return p;
  }

  private parts(ms: number): LocalParts {
    const out: LocalParts = { y: 0, m: 0, d: 0, h: 0, mi: 0 };
    for (const part of this.fmt.formatToParts(ms)) {
      switch (part.type) {
        case 'year':
          out.y = Number(part.value);
          break;
        case 'month':
          out.m = Number(part.value);
          break;
        case 'day':
          out.d = Number(part.value);
          break;
        case 'hour':
          out.h = Number(part.value) % 24;
          break;
        case 'minute':
          out.mi = Number(part.value);
          break;
        default:
          break;
      }
    }
    return out;
  }

  /** local wall clock − UTC, in ms, at instant `ms` (minute precision). */
  private offsetAt(ms: number): number {
    const floor = Math.floor(ms / MINUTE) * MINUTE;
    const p = this.parts(floor);
    return Date.UTC(p.y, p.m - 1, p.d, p.h, p.mi) - floor;
  }

  /** First instant whose local wall clock is >= the given local midnight. */
  private utcOfLocalMidnight(y: number, m0: number, d: number, hintOffset: number): number {
    const wall = Date.UTC(y, m0, d);
    let guess = wall - hintOffset;
    for (let i = 0; i < 3; i++) {
      const off = this.offsetAt(guess);
      const next = wall - off;
      if (next === guess) break;
      guess = next;
    }
    // Zones that skip midnight (DST at 00:00): step forward to the first minute of the new day.
    for (let i = 0; i < 120; i++) {
      const p = this.parts(guess);
      if (Date.UTC(p.y, p.m - 1, p.d) >= wall) break;
      guess += MINUTE;
    }
    return guess;
  }

  private compute(ms: number): Periods {
    const p = this.parts(ms);
    const offset = Date.UTC(p.y, p.m - 1, p.d, p.h, p.mi) - ms;
    const mm = String(p.m).padStart(2, '0');
    const dd = String(p.d).padStart(2, '0');
    return {
      dayId: `${p.y}-${mm}-${dd}`,
      dayEndMs: this.utcOfLocalMidnight(p.y, p.m - 1, p.d + 1, offset),
      monthId: `${p.y}-${mm}`,
      monthEndMs: this.utcOfLocalMidnight(p.y, p.m, 1, offset),
    };
  }
}

/** Fixed 10-second throttling window (docs/decisions.md: "Quotas"). */
export const THROTTLING_WINDOW_MS = 10_000;

export function windowStartOf(nowMs: number): number {
  return Math.floor(nowMs / THROTTLING_WINDOW_MS) * THROTTLING_WINDOW_MS;
}
