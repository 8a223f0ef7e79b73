/**
 * HTTP bindings listed from a schema (google.api.http and additional_bindings,
 * from a descriptor set built with buf, as a user builds one), their checks,
 * and route-conflict detection with both names.
 */
import { describe, it, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { createFileRegistry, createRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { registryWithRules } from "../support/rest-conflict.js";
import { assertNoRouteConflicts, findRouteConflicts, listHttpBindings, servicesOf, HttpBindingError } from "../../src/rest/bindings.js";
import { buildDescriptorSet } from "../support/schema-upstream.js";

describe("HTTP bindings from the schema", () => {
  let dir: string | undefined;
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it("lists every rule and additional binding of a buf-built descriptor set, with verb, template, body and response_body", async () => {
    const file = await buildDescriptorSet();
    dir = dirname(file);
    const registry = createRegistry(createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(file))));
    const bindings = listHttpBindings(registry);
    const byName = new Map(bindings.map((b) => [b.name, b]));
    const get = byName.get("bridge.test.rest.v1.Messaging.GetMessage")!;
    assert.equal(get.verb, "GET");
    assert.equal(get.template.source, "/v2/messages/{message_id}");
    assert.equal(get.rpcPath, "/bridge.test.rest.v1.Messaging/GetMessage");
    assert.equal(get.body, undefined);
    const extra = byName.get("bridge.test.rest.v1.Messaging.GetMessage additional_bindings[0]")!;
    assert.equal(extra.template.source, "/v2/users/{user_id}/messages/{message_id}");
    assert.equal(extra.method, get.method);
    assert.equal(byName.get("bridge.test.rest.v1.Messaging.UpdateMessage")!.body, "message");
    assert.equal(byName.get("bridge.test.rest.v1.Messaging.UpdateMessageAll")!.body, "*");
    assert.equal(byName.get("bridge.test.rest.v1.Library.ListBooks")!.responseBody, "books");
    assert.equal(byName.get("bridge.test.rest.v1.Library.SearchBooks")!.verb, "SEARCH");
    assert.equal(byName.get("bridge.test.rest.v1.Library.DeleteBook")!.verb, "DELETE");
    assert.equal(byName.get("bridge.test.rest.v1.Library.PublishBook")!.template.verb, "publish");
    // Methods without an annotation have no binding; the test proto's bindings do not conflict.
    assert.ok(!bindings.some((b) => b.rpcPath.startsWith("/bridge.test.v1.")));
    assert.deepEqual(findRouteConflicts(bindings, servicesOf(registry)), []);
  });

  it("reports two bindings with the same verb and template shape, naming both", () => {
    const registry = registryWithRules({ A: { pattern: { case: "get", value: "/v1/{name=items/*}" } }, B: { pattern: { case: "get", value: "/v1/items/{name}" } } });
    const conflicts = findRouteConflicts(listHttpBindings(registry), servicesOf(registry));
    assert.equal(conflicts.length, 1);
    assert.equal(conflicts[0].first, "conflict.v1.Svc.A");
    assert.equal(conflicts[0].second, "conflict.v1.Svc.B");
    assert.throws(() => assertNoRouteConflicts(listHttpBindings(registry), servicesOf(registry)), (e: Error) => e instanceof HttpBindingError && /conflict\.v1\.Svc\.A and conflict\.v1\.Svc\.B/.test(e.message));
  });

  it("different verbs on one template do not conflict; custom \"*\" conflicts with every verb", () => {
    const ok = registryWithRules({ A: { pattern: { case: "get", value: "/v1/{name=items/*}" } }, B: { pattern: { case: "delete", value: "/v1/{name=items/*}" } } });
    assert.deepEqual(findRouteConflicts(listHttpBindings(ok), servicesOf(ok)), []);
    const star = registryWithRules({
      A: { pattern: { case: "get", value: "/v1/{name=items/*}" } },
      B: { pattern: { case: "custom", value: { kind: "*", path: "/v1/items/{name}" } } },
    });
    assert.equal(findRouteConflicts(listHttpBindings(star), servicesOf(star)).length, 1);
  });

  it("reports a REST route that shadows an RPC path /package.Service/Method, naming the binding and the RPC", () => {
    const registry = registryWithRules({ A: { pattern: { case: "post", value: "/{name=*}/{tags2=*}" } } });
    assert.throws(
      () => listHttpBindings(registry),
      (e: Error) => e instanceof HttpBindingError && /tags2/.test(e.message),
    );
    const shadow = registryWithRules({ A: { pattern: { case: "post", value: "/conflict.v1.Svc/{name}" }, body: "*" } });
    const conflicts = findRouteConflicts(listHttpBindings(shadow), servicesOf(shadow));
    assert.equal(conflicts.length, 1);
    assert.equal(conflicts[0].first, "conflict.v1.Svc.A");
    assert.equal(conflicts[0].second, "RPC /conflict.v1.Svc/A");
  });

  it("rejects rules that cannot be served, naming the method", () => {
    const cases: [Parameters<typeof registryWithRules>[0], RegExp][] = [
      [{ A: { pattern: { case: "get", value: "/v1/{nope}" } } }, /conflict\.v1\.Svc\.A: path variable \{nope\}: conflict\.v1\.Req has no field "nope"/],
      [{ A: { pattern: { case: "get", value: "/v1/{tags}" } } }, /path variable \{tags\} is a list field/],
      [{ A: { pattern: { case: "post", value: "/v1/x" }, body: "missing" } }, /body "missing" is not a field of conflict\.v1\.Req/],
      [{ A: { pattern: { case: "get", value: "/v1/x" }, responseBody: "missing" } }, /response_body "missing"/],
      [{ A: { pattern: { case: "get", value: "v1" } } }, /conflict\.v1\.Svc\.A: invalid path template "v1"/],
      [{ A: {} }, /sets no pattern/],
    ];
    for (const [rules, message] of cases) {
      assert.throws(() => listHttpBindings(registryWithRules(rules)), (e: Error) => e instanceof HttpBindingError && message.test(e.message), String(message));
    }
  });
});
