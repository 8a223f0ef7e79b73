/**
 * How many retries a cluster may add on top of its traffic. Retries of calls
 * that never reached an application are safe, but when a whole cluster is
 * failing they multiply the load on whatever is left; a budget (Envoy's
 * retry_budget, gRPC's retry throttling) caps them. A retry is allowed while
 * the retries in flight stay under `budgetPercent` of the calls in flight,
 * and `minRetriesPerSecond` are always allowed so a quiet cluster can retry at
 * all.
 */
import type { RetryOptions } from "./cluster-options.js";

export class RetryBudget {
  private active = 0;
  private windowStart = 0;
  private inWindow = 0;

  constructor(
    private readonly options: RetryOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Takes a retry from the budget if there is one; each true must be paired
   * with one `release()` when that retry's attempt ends.
   *
   * @param inFlight calls in flight on the cluster right now.
   */
  tryAcquire(inFlight: number): boolean {
    const now = this.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    const allowed =
      this.inWindow < this.options.minRetriesPerSecond ||
      this.active < (inFlight * this.options.budgetPercent) / 100;
    if (!allowed) return false;
    this.inWindow++;
    this.active++;
    return true;
  }

  release(): void {
    if (this.active > 0) this.active--;
  }
}
