import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RetryBudget } from "../../src/upstream/retry-budget.js";

describe("RetryBudget", () => {
  it("always allows minRetriesPerSecond per second, then no more when the percentage allows none", () => {
    let now = 10_000;
    const budget = new RetryBudget({ maxAttempts: 3, budgetPercent: 0, minRetriesPerSecond: 2 }, () => now);
    assert.deepEqual([budget.tryAcquire(100), budget.tryAcquire(100), budget.tryAcquire(100)], [true, true, false]);
    now += 1000;
    assert.equal(budget.tryAcquire(100), true);
  });

  it("allows retries in flight up to budgetPercent of the calls in flight", () => {
    const budget = new RetryBudget({ maxAttempts: 3, budgetPercent: 20, minRetriesPerSecond: 0 }, () => 0);
    const granted = Array.from({ length: 4 }, () => budget.tryAcquire(10));
    assert.deepEqual(granted, [true, true, false, false]);
    budget.release();
    assert.equal(budget.tryAcquire(10), true);
  });
});
