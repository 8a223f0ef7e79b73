import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Resolver, parseEndpoint, type ResolvedAddress } from "../../src/upstream/resolver.js";

describe("parseEndpoint", () => {
  it("reads host:port, IPv6 in brackets", () => {
    assert.deepEqual(parseEndpoint("users:50051", "c"), { host: "users", port: 50051 });
    assert.deepEqual(parseEndpoint("[::1]:8080", "c"), { host: "::1", port: 8080 });
  });

  for (const bad of ["users", "users:0", "users:70000", "http://users:1", "::1:80", ""]) {
    it(`rejects ${JSON.stringify(bad)}, naming the cluster and the value`, () => {
      assert.throws(() => parseEndpoint(bad, "users"), {
        message: `cluster "users": invalid endpoint "${bad}": expected HOST:PORT (IPv6 as [ADDR]:PORT)`,
      });
    });
  }
});

describe("Resolver", () => {
  it("dials a hostname by name until its first lookup, then every address it has", async () => {
    const updates: Map<string, ResolvedAddress>[] = [];
    const resolver = new Resolver(["10.0.0.1:1", "svc:2"], "c", async () => ["10.0.0.2", "10.0.0.3"], 60_000, (a) => updates.push(a), () => {});
    assert.deepEqual([...resolver.current().keys()], ["10.0.0.1:1", "svc:2"]);
    await resolver.refresh();
    resolver.stop();
    assert.deepEqual([...updates[0]!.keys()], ["10.0.0.1:1", "10.0.0.2:2", "10.0.0.3:2"]);
    assert.equal(updates[0]!.get("10.0.0.2:2")!.hostname, "svc");
  });

  it("keeps the last answer when a lookup fails, and reports the failure", async () => {
    let fail = false;
    const errors: string[] = [];
    const updates: Map<string, ResolvedAddress>[] = [];
    const resolver = new Resolver(
      ["svc:2"],
      "c",
      async () => {
        if (fail) throw new Error("SERVFAIL");
        return ["10.0.0.2"];
      },
      60_000,
      (a) => updates.push(a),
      (_host, error) => errors.push(error.message),
    );
    await resolver.refresh();
    fail = true;
    await resolver.refresh();
    resolver.stop();
    assert.deepEqual([...updates[1]!.keys()], ["10.0.0.2:2"]);
    assert.deepEqual(errors, [`cluster "c": DNS lookup of "svc" failed: SERVFAIL`]);
  });
});
