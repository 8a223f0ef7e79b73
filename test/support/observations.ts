/**
 * What a test server saw, so tests can assert on the upstream side: which
 * calls (by request text) were cancelled, and what metadata arrived.
 */
export class Observations {
  private readonly cancelled = new Set<string>();
  private readonly waiters = new Map<string, (() => void)[]>();
  private readonly arrivals = new Map<string, (() => void)[]>();
  readonly metadata = new Map<string, Record<string, string | string[]>>();

  /** A call with this id reached the server (its metadata is recorded). */
  markArrived(id: string): void {
    for (const resolve of this.arrivals.get(id) ?? []) resolve();
    this.arrivals.delete(id);
  }

  /** Resolves when the server has received the call with this id. */
  arrivedCall(id: string): Promise<void> {
    if (this.metadata.has(id)) return Promise.resolve();
    return new Promise((resolve) => this.arrivals.set(id, [...(this.arrivals.get(id) ?? []), resolve]));
  }

  markCancelled(id: string): void {
    this.cancelled.add(id);
    for (const resolve of this.waiters.get(id) ?? []) resolve();
    this.waiters.delete(id);
  }

  /** Resolves when the server has seen the call with this id cancelled. */
  cancelledCall(id: string): Promise<void> {
    if (this.cancelled.has(id)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.waiters.get(id) ?? [];
      list.push(resolve);
      this.waiters.set(id, list);
    });
  }

  wasCancelled(id: string): boolean {
    return this.cancelled.has(id);
  }
}
