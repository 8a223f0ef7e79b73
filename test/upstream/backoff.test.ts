import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay } from "../../src/upstream/backoff.js";

const noJitter = () => 0.5;

describe("backoffDelay", () => {
  it("grows by 1.6 per consecutive failure from the base", () => {
    assert.deepEqual([1, 2, 3, 4].map((n) => backoffDelay(n, 1000, 120_000, noJitter)), [1000, 1600, 2560, 4096]);
  });

  it("stops at the cap", () => {
    assert.equal(backoffDelay(50, 1000, 30_000, noJitter), 30_000);
  });

  it("jitters by at most 20% either way", () => {
    assert.equal(backoffDelay(1, 1000, 30_000, () => 0), 800);
    assert.equal(backoffDelay(1, 1000, 30_000, () => 0.999999), 1200);
    assert.equal(backoffDelay(50, 1000, 30_000, () => 0.999999), 36_000);
  });

  it("a base of 0 means reconnect at once", () => {
    assert.equal(backoffDelay(3, 0, 0), 0);
  });
});
