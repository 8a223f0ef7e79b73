/**
 * Timeouts for request bodies that stall (slowloris), without a timer per
 * call. A Node timer costs a Timeout object, a trip into the timer list and
 * C++ ref-count toggles to arm and again to clear; on the unary path that
 * was a few percent of all the CPU a call takes, spent on a guard that
 * almost never fires.
 *
 * Instead, one interval per timeout value ticks at a tenth of it, and the
 * watched bodies sit in an intrusive list (their links are their own
 * fields: watching allocates nothing). Every entry of a list has the same
 * timeout and joins at the tail, so the list is in expiry order and a sweep
 * only looks at its head. An entry fires between its timeout and its
 * timeout plus one tick: fine for a guard, not for a call's deadline, which
 * keeps a precise timer of its own.
 */

/** What a StallWatch keeps in the watched object itself. */
export interface Watched {
  stallPrev: Watched | undefined;
  stallNext: Watched | undefined;
  /** The sweep at which it has stalled. */
  stallAt: number;
  /** Whether it is in a list now. */
  stallWatched: boolean;
  /** Called once, from a sweep, when the timeout passed while still watched. */
  onStalled(): void;
}

/** The coarsest tick: a timeout fires at most this late. */
const maxTickMs = 1000;
const minTickMs = 5;

export class StallWatch {
  private head: Watched | undefined;
  private tail: Watched | undefined;
  private sweeps = 0;
  private readonly tickMs: number;
  /** Ticks from watch() to stalled, counting the tick in progress as none. */
  private readonly ticks: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number) {
    this.tickMs = Math.min(maxTickMs, Math.max(minTickMs, Math.ceil(timeoutMs / 10)));
    this.ticks = Math.ceil(timeoutMs / this.tickMs) + 1;
  }

  watch(entry: Watched): void {
    entry.stallAt = this.sweeps + this.ticks;
    entry.stallPrev = this.tail;
    entry.stallNext = undefined;
    entry.stallWatched = true;
    if (this.tail === undefined) this.head = entry;
    else this.tail.stallNext = entry;
    this.tail = entry;
    if (this.timer === undefined) {
      this.timer = setInterval(sweep, this.tickMs, this);
      // A guard, not work: it never keeps the process alive.
      this.timer.unref();
    }
  }

  unwatch(entry: Watched): void {
    if (!entry.stallWatched) return;
    entry.stallWatched = false;
    const { stallPrev: prev, stallNext: next } = entry;
    if (prev === undefined) this.head = next;
    else prev.stallNext = next;
    if (next === undefined) this.tail = prev;
    else next.stallPrev = prev;
    entry.stallPrev = entry.stallNext = undefined;
  }

  /** Whether an interval is running (for tests: an idle watch has none). */
  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Entries watched now (for tests). */
  get size(): number {
    let n = 0;
    for (let e = this.head; e !== undefined; e = e.stallNext) n++;
    return n;
  }

  /** @internal */
  sweep(): void {
    this.sweeps++;
    while (this.head !== undefined && this.head.stallAt <= this.sweeps) {
      const entry = this.head;
      this.unwatch(entry);
      entry.onStalled();
    }
    // Idle: no interval at all until the next body is watched.
    if (this.head === undefined && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

function sweep(watch: StallWatch): void {
  watch.sweep();
}

/** One watch per timeout value: options give every call of a route the same. */
const watches = new Map<number, StallWatch>();

export function stallWatchFor(timeoutMs: number): StallWatch {
  let watch = watches.get(timeoutMs);
  if (watch === undefined) watches.set(timeoutMs, (watch = new StallWatch(timeoutMs)));
  return watch;
}
