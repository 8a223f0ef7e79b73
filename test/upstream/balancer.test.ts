import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { LeastRequestsPicker, RoundRobinPicker } from "../../src/upstream/balancer.js";

const endpoint = (name: string, inFlight = 0) => ({ name, inFlight });

describe("RoundRobinPicker", () => {
  it("takes each endpoint in turn", () => {
    const list = [endpoint("a"), endpoint("b"), endpoint("c")];
    const picker = new RoundRobinPicker<(typeof list)[number]>();
    assert.deepEqual(Array.from({ length: 6 }, () => picker.pick(list)!.name), ["a", "b", "c", "a", "b", "c"]);
  });

  it("skips the endpoint to avoid when there is another", () => {
    const list = [endpoint("a"), endpoint("b")];
    const picker = new RoundRobinPicker<(typeof list)[number]>();
    assert.equal(picker.pick(list, list[0])!.name, "b");
    assert.equal(picker.pick([list[0]!], list[0])!.name, "a");
  });

  it("picks nothing from an empty list", () => {
    assert.equal(new RoundRobinPicker().pick([]), undefined);
  });
});

describe("LeastRequestsPicker", () => {
  it("of the two endpoints drawn, takes the one with fewer calls in flight", () => {
    const list = [endpoint("busy", 5), endpoint("idle", 0), endpoint("other", 9)];
    // Draws index 0, then the next index (0 + 1 + 0).
    const picker = new LeastRequestsPicker<(typeof list)[number]>(() => 0);
    assert.equal(picker.pick(list)!.name, "idle");
  });

  it("never draws the same endpoint twice, so two endpoints always compare both", () => {
    const list = [endpoint("a", 3), endpoint("b", 1)];
    for (const r of [0, 0.3, 0.6, 0.99]) {
      assert.equal(new LeastRequestsPicker<(typeof list)[number]>(() => r).pick(list)!.name, "b");
    }
  });

  it("takes the other drawn endpoint when one is to be avoided", () => {
    const list = [endpoint("a", 0), endpoint("b", 7)];
    assert.equal(new LeastRequestsPicker<(typeof list)[number]>(() => 0).pick(list, list[0])!.name, "b");
  });
});
