/**
 * The Connect conformance suite's "Errors" and "Duplicate Metadata" cases
 * (connectrpc/conformance, internal/app/connectconformance/testsuites/data/
 * errors.yaml and duplicate_metadata.yaml), each through the bridge in every
 * protocol it speaks (Connect, gRPC-Web, gRPC over h2c) and both codecs, with
 * connect-node's own clients, against upstreams that answer like the suite's
 * reference server (test/support/conformance-upstream.ts): @grpc/grpc-js with
 * @grpc/proto-loader for proto, connect-node's gRPC server for JSON (which the
 * bridge forwards as application/grpc+json, having no schema).
 *
 * What is checked is what the suite checks, made exact where a proxy must be
 * exact: the code, the message byte for byte, each error detail's type and
 * bytes as the upstream sent them, response data, what the upstream saw of
 * the request (RequestInfo: the request messages and the repeated
 * X-Conformance-Test values), and header and trailer metadata values. Like
 * the suite, a value list is compared after splitting on "," (HTTP lets
 * repeated fields be joined, and Node's client joins them), and when no data
 * message was sent, headers and trailers may arrive as one block
 * (trailers-only). Transparency adds one rule the suite leaves out: a header
 * must not show up as a trailer, or twice.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { create, equals, fromBinary, type DescMessage, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { startBridge, type RunningBridge } from "../support/bridge.js";
import {
  ConformanceService,
  RequestInfoSchema,
  conformanceRegistry,
  requestSchemas,
  startConformanceConnectGrpc,
  startConformanceGrpcJs,
  type AnyMessage,
  type ConformanceUpstream,
  type Header,
} from "../support/conformance-upstream.js";

// ---------------------------------------------------------------------------
// The cases, as the two YAML files define them

type Kind = "unary" | "serverStream" | "clientStream" | "bidiHalf" | "bidiFull";

interface Definition {
  headers: Header[];
  trailers: Header[];
  data: Uint8Array[];
  error?: { code: Code; message: string };
}

interface Case {
  suite: "Errors" | "Duplicate Metadata";
  name: string;
  kind: Kind;
  requestHeaders: Header[];
  def: Definition;
  /** request_data of the requests after the first (client and bidi streams). */
  more: Uint8Array[];
}

const testResponse = Buffer.from("dGVzdCByZXNwb25zZQ==", "base64"); // "test response"
const conformanceHeader: Header[] = [{ name: "X-Conformance-Test", value: ["Value1", "Value2"] }];
const h = (name: string, ...value: string[]): Header[] => [{ name, value }];

const codes: [string, Code][] = [
  ["canceled", Code.Canceled],
  ["unknown", Code.Unknown],
  ["invalid-argument", Code.InvalidArgument],
  ["deadline-exceeded", Code.DeadlineExceeded],
  ["not-found", Code.NotFound],
  ["already-exists", Code.AlreadyExists],
  ["permission-denied", Code.PermissionDenied],
  ["resource-exhausted", Code.ResourceExhausted],
  ["failed-precondition", Code.FailedPrecondition],
  ["aborted", Code.Aborted],
  ["out-of-range", Code.OutOfRange],
  ["unimplemented", Code.Unimplemented],
  ["internal", Code.Internal],
  ["unavailable", Code.Unavailable],
  ["data-loss", Code.DataLoss],
  ["unauthenticated", Code.Unauthenticated],
];

function errorsCases(): Case[] {
  const cases: Case[] = [];
  const add = (name: string, kind: Kind, def: Partial<Definition>, extra: { requestHeaders?: Header[]; more?: Uint8Array[] } = {}) =>
    cases.push({
      suite: "Errors",
      name,
      kind,
      requestHeaders: extra.requestHeaders ?? [],
      def: { headers: [], trailers: [], data: [], ...def },
      more: extra.more ?? [],
    });
  const withMetadata = { headers: h("x-custom-header", "foo"), trailers: h("x-custom-trailer", "bing"), error: { code: Code.Unauthenticated, message: "unauthenticated" } };
  for (const [name, code] of codes) add(`unary/${name}`, "unary", { error: { code, message: name.replaceAll("-", " ") } });
  add("unary/error-with-metadata", "unary", withMetadata);
  add("unary/unicode-error-message", "unary", { error: { code: Code.Internal, message: "\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\n" } });
  for (const [name, code] of codes) add(`server-stream/${name}`, "serverStream", { error: { code, message: name.replaceAll("-", " ") } });
  add("server-stream/error-with-metadata", "serverStream", withMetadata);
  const failing = (message: string, data: Uint8Array[]) => ({
    headers: h("x-custom-header", "foo"),
    trailers: h("x-custom-trailer", "bing"),
    data,
    error: { code: Code.Internal, message },
  });
  add("server-stream/error-with-responses", "serverStream", failing("server stream failed", [testResponse, testResponse]), { requestHeaders: conformanceHeader });
  add("server-stream/error-with-no-responses", "serverStream", failing("server stream failed", []), { requestHeaders: conformanceHeader });
  add("client-stream/error-one-request", "clientStream", { error: { code: Code.Internal, message: "client stream failed" } });
  add("client-stream/error-with-metadata", "clientStream", withMetadata);
  add("client-stream/error-multiple-requests", "clientStream", { error: { code: Code.Internal, message: "client stream failed" } }, { more: [testResponse] });
  add("bidi-stream/error-with-metadata", "bidiHalf", withMetadata);
  add("bidi-stream/full-duplex/error-with-responses", "bidiFull", failing("bidi full duplex stream failed", [testResponse, testResponse]), {
    requestHeaders: conformanceHeader,
    more: [testResponse],
  });
  add("bidi-stream/full-duplex/error-no-responses", "bidiFull", failing("bidi full duplex stream failed", []), { requestHeaders: conformanceHeader });
  add("bidi-stream/half-duplex/error-with-responses", "bidiHalf", failing("bidi half duplex stream failed", [testResponse, testResponse]), {
    requestHeaders: conformanceHeader,
    more: [testResponse],
  });
  add("bidi-stream/half-duplex/error-with-no-responses", "bidiHalf", failing("bidi half duplex stream failed", []), {
    requestHeaders: conformanceHeader,
    more: [testResponse],
  });
  return cases;
}

function duplicateMetadataCases(): Case[] {
  const cases: Case[] = [];
  const add = (name: string, kind: Kind, def: Partial<Definition>, extra: { requestHeaders?: Header[]; more?: Uint8Array[] } = {}) =>
    cases.push({
      suite: "Duplicate Metadata",
      name,
      kind,
      requestHeaders: extra.requestHeaders ?? conformanceHeader,
      def: { headers: h("x-custom-header", "foo", "bar", "baz"), trailers: h("x-custom-trailer", "bing", "quux"), data: [], ...def },
      more: extra.more ?? [],
    });
  const fail = (message: string) => ({ code: Code.Internal, message });
  const two = [testResponse, testResponse];
  add("unary/success", "unary", { data: [testResponse] });
  add("unary/error", "unary", { error: fail("unary failed") });
  add("client-stream/success", "clientStream", { data: [testResponse] }, { more: [testResponse] });
  add("client-stream/error", "clientStream", { error: fail("client stream failed") }, { more: [testResponse] });
  add("server-stream/success", "serverStream", { data: two });
  add("server-stream/no-response", "serverStream", {}, { requestHeaders: [] });
  add("server-stream/error-with-responses", "serverStream", { data: two, error: fail("server stream failed") });
  add("server-stream/error-with-no-responses", "serverStream", { error: fail("server stream failed") });
  add("bidi-stream/full-duplex/success", "bidiFull", { data: two }, { more: [testResponse] });
  add("bidi-stream/full-duplex/error-with-responses", "bidiFull", { data: two, error: fail("bidi full duplex stream failed") }, { more: [testResponse] });
  add("bidi-stream/full-duplex/error-no-responses", "bidiFull", { error: fail("bidi full duplex stream failed") });
  add("bidi-stream/half-duplex/success", "bidiHalf", { data: two }, { more: [testResponse] });
  add("bidi-stream/half-duplex/error-with-responses", "bidiHalf", { data: two, error: fail("bidi half duplex stream failed") }, { more: [testResponse] });
  add("bidi-stream/half-duplex/error-with-no-responses", "bidiHalf", { error: fail("bidi half duplex stream failed") }, { more: [testResponse] });
  return cases;
}

// ---------------------------------------------------------------------------
// Requests from a case

const schemaOf = (kind: Kind): DescMessage =>
  kind === "unary" ? requestSchemas.unary : kind === "serverStream" ? requestSchemas.serverStream : kind === "clientStream" ? requestSchemas.clientStream : requestSchemas.bidiStream;

function requestsOf(c: Case): Message[] {
  const { def } = c;
  const single = c.kind === "unary" || c.kind === "clientStream";
  const responseDefinition = single
    ? {
        responseHeaders: def.headers,
        response: def.error ? { case: "error", value: { code: def.error.code, message: def.error.message } } : def.data.length > 0 ? { case: "responseData", value: def.data[0] } : { case: undefined },
        responseTrailers: def.trailers,
      }
    : {
        responseHeaders: def.headers,
        responseData: def.data,
        ...(def.error ? { error: { code: def.error.code, message: def.error.message } } : {}),
        responseTrailers: def.trailers,
      };
  const schema = schemaOf(c.kind);
  return [
    create(schema, { responseDefinition, ...(c.kind === "bidiFull" ? { fullDuplex: true } : {}) } as never),
    ...c.more.map((requestData) => create(schema, { requestData } as never)),
  ];
}

// ---------------------------------------------------------------------------
// Running one case with a connect-node client

type ConformanceClient = Client<typeof ConformanceService>;

interface Payload {
  data: Uint8Array;
  requestInfo?: Message;
}

interface Outcome {
  header?: Headers;
  trailer?: Headers;
  payloads: Payload[];
  error?: ConnectError;
}

async function run(client: ConformanceClient, c: Case, id: string, requests: Message[]): Promise<Outcome> {
  const headers = new Headers();
  for (const { name, value } of c.requestHeaders) for (const v of value) headers.append(name, v);
  headers.set("x-test-id", id);
  const outcome: Outcome = { payloads: [] };
  const options = { headers, onHeader: (h: Headers) => (outcome.header = h), onTrailer: (t: Headers) => (outcome.trailer = t) };
  const payloadOf = (response: Message) => (response as unknown as { payload: Payload }).payload;
  // Full duplex: each request after the first waits for the answer to the one before.
  let wake: () => void = () => {};
  const answered = (count: number) =>
    new Promise<void>((resolve) => {
      const check = () => (outcome.payloads.length >= count || outcome.error !== undefined ? resolve() : (wake = check));
      check();
    });
  async function* stream(interleaved: boolean) {
    for (let i = 0; i < requests.length; i++) {
      if (interleaved && i > 0) await answered(i);
      yield requests[i];
    }
  }
  const unsafe = client as unknown as Record<string, (input: unknown, options: unknown) => unknown>;
  try {
    switch (c.kind) {
      case "unary":
        outcome.payloads.push(payloadOf((await unsafe.unary(requests[0], options)) as Message));
        break;
      case "clientStream":
        outcome.payloads.push(payloadOf((await unsafe.clientStream(stream(false), options)) as Message));
        break;
      case "serverStream":
      case "bidiHalf":
      case "bidiFull": {
        const responses =
          c.kind === "serverStream" ? unsafe.serverStream(requests[0], options) : unsafe.bidiStream(stream(c.kind === "bidiFull"), options);
        for await (const response of responses as AsyncIterable<Message>) {
          outcome.payloads.push(payloadOf(response));
          wake();
        }
        break;
      }
    }
  } catch (e) {
    outcome.error = ConnectError.from(e);
    wake();
  }
  return outcome;
}

// ---------------------------------------------------------------------------
// What the suite expects, made exact

/** The suite's canonical form of a value list: split on ",", one space trimmed around each comma. */
function canonical(values: string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    const parts = value.split(",");
    parts.forEach((part, i) => {
      let p = part;
      if (i > 0 && p.startsWith(" ")) p = p.slice(1);
      if (i < parts.length - 1 && p.endsWith(" ")) p = p.slice(0, -1);
      out.push(p);
    });
  }
  return out;
}

function valuesOf(headers: Headers | undefined, name: string): string[] | undefined {
  const value = headers?.get(name);
  return value === null || value === undefined ? undefined : canonical([value]);
}

/** Every expected name carries exactly the expected values. */
function metadataMismatch(expected: Header[], actual: Headers | undefined): string | undefined {
  for (const { name, value } of expected) {
    const got = valuesOf(actual, name);
    if (got === undefined) return `missing ${name}`;
    if (JSON.stringify(got) !== JSON.stringify(canonical(value))) return `${name}: expected ${JSON.stringify(value)}, got ${JSON.stringify(got)}`;
  }
  return undefined;
}

function assertMetadata(what: string, expected: Header[], actual: Headers | undefined): void {
  const mismatch = metadataMismatch(expected, actual);
  assert.equal(mismatch, undefined, `${what}: ${mismatch} (all: ${JSON.stringify(actual ? [...actual] : null)})`);
}

function assertAbsent(what: string, names: Header[], actual: Headers | undefined): void {
  for (const { name } of names) assert.equal(actual?.get(name) ?? null, null, `${what} must not carry ${name}`);
}

function decodedRequests(info: Message): Message[] {
  return (info as unknown as { requests: AnyMessage[] }).requests.map((any) => {
    const typeName = any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1);
    const schema = conformanceRegistry.getMessage(typeName);
    assert.ok(schema !== undefined, `request type ${JSON.stringify(any.typeUrl)}`);
    return fromBinary(schema, any.value);
  });
}

/** What the upstream saw: these requests, the repeated request header, no timeout (none was sent). */
function assertRequestInfo(what: string, c: Case, info: Message | undefined, requests: Message[], withHeaders: boolean): void {
  assert.ok(info !== undefined, `${what}: has a RequestInfo`);
  const got = decodedRequests(info);
  assert.equal(got.length, requests.length, `${what}: number of requests the upstream saw`);
  got.forEach((message, i) => assert.ok(equals(schemaOf(c.kind), message, requests[i]), `${what}: request #${i + 1} survived the round trip`));
  if (!withHeaders) return;
  const seen = new Headers();
  for (const { name, value } of (info as unknown as { requestHeaders: Header[] }).requestHeaders) for (const v of value) seen.append(name, v);
  assertMetadata(`${what}: request headers the upstream saw`, c.requestHeaders, seen);
  assert.equal((info as unknown as { timeoutMs?: bigint }).timeoutMs, undefined, `${what}: the upstream saw no timeout`);
}

/** The requests each expected payload's RequestInfo describes (full duplex: those since the last response). */
function expectedRequestsFor(c: Case, requests: Message[], index: number): Message[] {
  if (c.kind === "bidiFull") return [requests[index]];
  return requests;
}

function check(c: Case, outcome: Outcome, requests: Message[], sent: ConformanceUpstream["sentErrors"], id: string): void {
  const { def } = c;
  const expectedPayloads = c.kind === "unary" || c.kind === "clientStream" ? (def.error ? [] : [def.data[0] ?? new Uint8Array(0)]) : def.data;

  // The error: code, message and details exactly as the upstream sent them.
  if (def.error === undefined) {
    assert.equal(outcome.error, undefined, `unexpected error: ${outcome.error?.message}`);
  } else {
    const error = outcome.error;
    assert.ok(error !== undefined, "expected an error, the call succeeded");
    assert.equal(Code[error.code], Code[def.error.code], `code (message ${JSON.stringify(error.rawMessage)})`);
    assert.equal(error.rawMessage, def.error.message, "message");
    const withRequestInfo = expectedPayloads.length === 0;
    const upstream = sent.get(id);
    assert.ok(upstream !== undefined, "the upstream recorded the error it sent");
    assert.equal(upstream.details.length, withRequestInfo ? 1 : 0, "details the upstream sent");
    const details = error.details as { type: string; value: Uint8Array }[];
    assert.equal(details.length, upstream.details.length, "number of error details");
    details.forEach((detail, i) => {
      const want = upstream.details[i];
      assert.equal(detail.type, want.typeUrl.slice(want.typeUrl.lastIndexOf("/") + 1), `detail #${i + 1} type`);
      assert.equal(Buffer.from(detail.value).toString("hex"), Buffer.from(want.value).toString("hex"), `detail #${i + 1} bytes`);
    });
    if (withRequestInfo) {
      assert.equal(details[0].type, RequestInfoSchema.typeName);
      const seen = c.kind === "bidiFull" ? requests.slice(0, 1) : requests;
      assertRequestInfo("error detail", c, fromBinary(RequestInfoSchema, details[0].value), seen, true);
    }
  }

  // Data messages, each with what the upstream saw.
  assert.equal(outcome.payloads.length, expectedPayloads.length, "number of responses");
  outcome.payloads.forEach((payload, i) => {
    assert.equal(Buffer.from(payload.data).toString("hex"), Buffer.from(expectedPayloads[i]).toString("hex"), `response #${i + 1} data`);
    if (i === 0 || c.kind === "bidiFull") assertRequestInfo(`response #${i + 1}`, c, payload.requestInfo, expectedRequestsFor(c, requests, i), i === 0);
    else assert.equal(payload.requestInfo, undefined, `response #${i + 1} carries data only`);
  });

  // Metadata. A client sees an error's headers and trailers together (ConnectError.metadata).
  const header = outcome.header;
  const trailer = outcome.error !== undefined ? outcome.error.metadata : outcome.trailer;
  if (outcome.error !== undefined) {
    assertMetadata("error metadata (headers)", def.headers, outcome.error.metadata);
    assertMetadata("error metadata (trailers)", def.trailers, outcome.error.metadata);
    // With data sent first, the headers block is known to be separate from the trailers.
    if (expectedPayloads.length > 0) {
      assertMetadata("response headers", def.headers, header);
      assertAbsent("response headers", def.trailers, header);
    }
  } else if (expectedPayloads.length === 0) {
    // No data message: headers and trailers may come as one block, read as either.
    const apart = metadataMismatch(def.headers, header) ?? metadataMismatch(def.trailers, trailer);
    const merged = [...def.headers, ...def.trailers];
    const together = [header, trailer].some((block) => metadataMismatch(merged, block) === undefined);
    assert.ok(apart === undefined || together, `metadata: ${apart} (headers ${JSON.stringify(header ? [...header] : null)}, trailers ${JSON.stringify(trailer ? [...trailer] : null)})`);
  } else {
    assertMetadata("response headers", def.headers, header);
    assertMetadata("response trailers", def.trailers, trailer);
    assertAbsent("response headers", def.trailers, header);
    assertAbsent("response trailers", def.headers, trailer);
  }
}

// ---------------------------------------------------------------------------
// Protocols and codecs

type Protocol = "Connect" | "gRPC-Web" | "gRPC";
type Codec = "proto" | "json";

function transport(protocol: Protocol, codec: Codec, baseUrl: string, kind: Kind): Transport {
  // Full-duplex bidi needs HTTP/2; everything else goes as browsers and curl send it.
  const options = { baseUrl, useBinaryFormat: codec === "proto", jsonOptions: { registry: conformanceRegistry } };
  if (protocol === "gRPC") return createGrpcTransport(options);
  const httpVersion = kind === "bidiFull" ? ("2" as const) : ("1.1" as const);
  return protocol === "Connect" ? createConnectTransport({ ...options, httpVersion }) : createGrpcWebTransport({ ...options, httpVersion });
}

const protocols: Protocol[] = ["Connect", "gRPC-Web", "gRPC"];
const codecs: Codec[] = ["proto", "json"];

describe("conformance: Errors and Duplicate Metadata, through the bridge", () => {
  let grpcJs: ConformanceUpstream;
  let connectGrpc: ConformanceUpstream;
  let protoBridge: RunningBridge;
  let jsonBridge: RunningBridge;
  before(async () => {
    grpcJs = await startConformanceGrpcJs();
    connectGrpc = await startConformanceConnectGrpc();
    protoBridge = await startBridge(grpcJs.address);
    jsonBridge = await startBridge(connectGrpc.address);
  });
  after(async () => {
    await protoBridge.close();
    await jsonBridge.close();
    await grpcJs.close();
    await connectGrpc.close();
  });

  let next = 0;
  for (const c of [...errorsCases(), ...duplicateMetadataCases()]) {
    for (const protocol of protocols) {
      for (const codec of codecs) {
        it(`${c.suite}/${c.name} [${protocol}, ${codec}]`, async () => {
          const bridge = codec === "proto" ? protoBridge : jsonBridge;
          const upstream = codec === "proto" ? grpcJs : connectGrpc;
          const client = createClient(ConformanceService, transport(protocol, codec, bridge.baseUrl, c.kind)) as ConformanceClient;
          const id = `${c.suite}/${c.name}/${protocol}/${codec}/${next++}`;
          const requests = requestsOf(c);
          check(c, await run(client, c, id, requests), requests, upstream.sentErrors, id);
        });
      }
    }
  }
});
