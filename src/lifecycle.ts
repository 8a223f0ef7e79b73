/**
 * Where a bridge process is in its life: what readiness (`/readyz`) reads
 * and what a drain (SIGTERM) changes. One object per bridge, shared by the
 * admin listener and the drain, so neither knows the other.
 */

/** What a drain listener is told. */
export interface DrainStart {
  /** Why the drain started, for the log: "SIGTERM", "close", ... */
  readonly reason: string;
}

export class Lifecycle {
  /** The data port accepts connections. */
  listening = false;
  /** A drain started: readiness fails from this moment on. */
  draining = false;
  private readonly drainListeners: Array<(start: DrainStart) => void> = [];

  /** Starts the drain once; later calls do nothing. */
  startDraining(reason: string): void {
    if (this.draining) return;
    this.draining = true;
    for (const listener of this.drainListeners) listener({ reason });
  }

  /** Runs `listener` when the drain starts. */
  onDrain(listener: (start: DrainStart) => void): void {
    this.drainListeners.push(listener);
  }
}
