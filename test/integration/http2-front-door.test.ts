/**
 * One port for every protocol: native gRPC clients (@grpc/grpc-js), and
 * connect-node's Connect, gRPC-Web and gRPC transports over HTTP/2, next to
 * HTTP/1.1 clients, on the bridge's single listener — cleartext (h2c) and TLS
 * with ALPN. The upstream is a @grpc/grpc-js server.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import {
  TestService,
  EchoRequestSchema,
  ErrorDetailSchema,
  type EchoRequest,
  type EchoResponse,
} from "../../gen/bridge/test/v1/test_pb.js";
import { grpcServiceDefinition } from "../support/grpc-definition.js";
import { selfSignedCert } from "../support/tls.js";
import { startGrpcJsServer, type RunningServer } from "../support/grpc-js-server.js";
import { startBridge, type RunningBridge } from "../support/bridge.js";
import { echoRequest, send } from "../support/raw-http.js";

type GenericClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
const GrpcClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(TestService), "TestService");

function unaryCall(client: GenericClient, req: EchoRequest, metadata = new grpc.Metadata(), options: grpc.CallOptions = {}) {
  return new Promise<{ res?: EchoResponse; error?: grpc.ServiceError; headers?: grpc.Metadata; trailers?: grpc.Metadata }>(
    (resolve) => {
      let headers: grpc.Metadata | undefined;
      const call = client.unary(req, metadata, options, (error: grpc.ServiceError | null, res: EchoResponse) =>
        setImmediate(() => resolve({ res, error: error ?? undefined, headers, trailers })),
      ) as grpc.ClientUnaryCall;
      let trailers: grpc.Metadata | undefined;
      call.on("metadata", (m) => (headers = m));
      call.on("status", (s: grpc.StatusObject) => (trailers = s.metadata));
    },
  );
}

describe("native gRPC clients through the bridge's port (h2c)", () => {
  let upstream: RunningServer;
  let bridge: RunningBridge;
  let client: GenericClient;
  before(async () => {
    upstream = await startGrpcJsServer();
    bridge = await startBridge(upstream.address);
    client = new GrpcClient(`127.0.0.1:${bridge.port}`, grpc.credentials.createInsecure()) as unknown as GenericClient;
  });
  after(async () => {
    client.close();
    await bridge.close();
    await upstream.close();
  });

  it("unary with metadata both ways, as when connected directly", async () => {
    const metadata = new grpc.Metadata();
    metadata.set("x-echo-user", "ada");
    metadata.set("x-echo-blob-bin", Buffer.from([0, 1, 255]));
    const { res, error, headers, trailers } = await unaryCall(client, create(EchoRequestSchema, { text: "g" }), metadata);
    assert.equal(error, undefined);
    assert.equal(res?.text, "g");
    assert.deepEqual(headers?.get("x-echo-user"), ["ada"]);
    assert.deepEqual(headers?.get("x-echo-blob-bin"), [Buffer.from([0, 1, 255])]);
    assert.deepEqual(trailers?.get("x-trailer-user"), ["ada"]);
  });

  it("errors keep code, message and grpc-status-details-bin", async () => {
    const { error } = await unaryCall(
      client,
      create(EchoRequestSchema, { text: "e", fail: { code: 7, message: "nope: ✓", withDetails: true } }),
    );
    assert.equal(error?.code, grpc.status.PERMISSION_DENIED);
    assert.equal(error?.details, "nope: ✓");
    const details = error?.metadata.get("grpc-status-details-bin")[0] as Buffer;
    assert.ok(details.includes(Buffer.from(ErrorDetailSchema.typeName)));
  });

  it("server streaming", async () => {
    const call = client.serverStream(create(EchoRequestSchema, { text: "s", responseCount: 3 })) as grpc.ClientReadableStream<EchoResponse>;
    const got: number[] = [];
    for await (const res of call) got.push((res as EchoResponse).index);
    assert.deepEqual(got, [0, 1, 2]);
  });

  it("client streaming", async () => {
    const res = await new Promise<EchoResponse>((resolve, reject) => {
      const call = client.clientStream((error: grpc.ServiceError | null, r: EchoResponse) => (error ? reject(error) : resolve(r))) as grpc.ClientWritableStream<EchoRequest>;
      for (const text of ["x", "y", "z"]) call.write(create(EchoRequestSchema, { text }));
      call.end();
    });
    assert.equal(res.text, "x,y,z");
  });

  it("bidi streaming is full duplex: a reply arrives before the next message is sent", async () => {
    const call = client.bidiStream() as grpc.ClientDuplexStream<EchoRequest, EchoResponse>;
    const replies = call[Symbol.asyncIterator]();
    for (let i = 0; i < 3; i++) {
      call.write(create(EchoRequestSchema, { text: `m${i}` }));
      const reply = await replies.next();
      assert.equal((reply.value as EchoResponse).text, `m${i}`);
    }
    call.end();
    assert.equal((await replies.next()).done, true);
  });

  it("a deadline ends the call with DEADLINE_EXCEEDED and cancels the upstream", async () => {
    const { error } = await unaryCall(client, create(EchoRequestSchema, { text: "g-deadline", delayMs: 5000 }), undefined, {
      deadline: Date.now() + 150,
    });
    assert.equal(error?.code, grpc.status.DEADLINE_EXCEEDED);
    await upstream.observations.cancelledCall("g-deadline");
  });

  it("a client RST_STREAM over HTTP/2 cancels the upstream (bug: the compat response reported resets as finished)", async () => {
    const call = client.serverStream(create(EchoRequestSchema, { text: "g-cancel", responseCount: 100, delayMs: 50 })) as grpc.ClientReadableStream<EchoResponse>;
    call.on("error", () => {}); // the client's own CANCELLED
    await new Promise((resolve) => call.once("data", resolve));
    call.cancel();
    await upstream.observations.cancelledCall("g-cancel");
  });

  it("an unknown method is UNIMPLEMENTED", async () => {
    const raw = new grpc.Client(`127.0.0.1:${bridge.port}`, grpc.credentials.createInsecure());
    const error = await new Promise<grpc.ServiceError>((resolve) =>
      raw.makeUnaryRequest("/bridge.test.v1.TestService/Nope", (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), (e) => resolve(e!)),
    );
    raw.close();
    assert.equal(error.code, grpc.status.UNIMPLEMENTED);
  });
});

const transports: [string, (opts: { baseUrl: string; httpVersion: "2"; nodeOptions?: object }) => Transport][] = [
  ["Connect", createConnectTransport],
  ["gRPC-Web", createGrpcWebTransport],
  ["gRPC", createGrpcTransport],
];

for (const security of ["h2c", "TLS"] as const) {
  describe(`connect-node transports over HTTP/2 (${security}) on one port`, () => {
    let upstream: RunningServer;
    let bridge: RunningBridge;
    let tls: { key: Buffer; cert: Buffer } | undefined;
    let baseUrl: string;
    before(async () => {
      upstream = await startGrpcJsServer();
      tls = security === "TLS" ? selfSignedCert() : undefined;
      bridge = await startBridge(upstream.address, tls ? { tls } : {});
      baseUrl = `${tls ? "https" : "http"}://127.0.0.1:${bridge.port}`;
    });
    after(async () => {
      await bridge.close();
      await upstream.close();
    });

    for (const [name, createTransport] of transports) {
      const client = (): Client<typeof TestService> =>
        createClient(TestService, createTransport({ baseUrl, httpVersion: "2", nodeOptions: tls ? { ca: tls.cert } : undefined }));

      it(`${name}: unary, error with details, server stream`, async () => {
        const c = client();
        assert.equal((await c.unary({ text: name })).text, name);
        const error = await c.unary({ text: "e", fail: { code: Code.Aborted, message: "stop", withDetails: true } }).then(
          () => assert.fail("expected an error"),
          (e: unknown) => ConnectError.from(e),
        );
        assert.equal(error.code, Code.Aborted);
        assert.equal(error.findDetails(ErrorDetailSchema)[0]?.reason, "test-reason");
        const got: number[] = [];
        for await (const r of c.serverStream({ text: "s", responseCount: 3 })) got.push(r.index);
        assert.deepEqual(got, [0, 1, 2]);
      });

      it(`${name}: bidi is full duplex (send, receive a reply, send again)`, async () => {
        const c = client();
        let release: (() => void) | undefined;
        const replies: string[] = [];
        async function* requests() {
          for (let i = 0; i < 3; i++) {
            yield create(EchoRequestSchema, { text: `d${i}` });
            // The next message goes out only after the reply to this one came back.
            await new Promise<void>((resolve) => (release = resolve));
          }
        }
        for await (const reply of c.bidiStream(requests())) {
          replies.push(reply.text);
          release?.();
        }
        assert.deepEqual(replies, ["d0", "d1", "d2"]);
      });
    }

    it("an HTTP/1.1 client and an HTTP/2 client on the same port at the same time", async () => {
      const h2 = client2(baseUrl, tls);
      const h1 = createClient(
        TestService,
        createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions: tls ? { ca: tls.cert } : undefined }),
      );
      const results = await Promise.all([
        ...Array.from({ length: 10 }, (_, i) => h2.unary({ text: `h2-${i}` })),
        ...Array.from({ length: 10 }, (_, i) => h1.unary({ text: `h1-${i}` })),
      ]);
      assert.deepEqual(
        results.map((r) => r.text),
        [...Array.from({ length: 10 }, (_, i) => `h2-${i}`), ...Array.from({ length: 10 }, (_, i) => `h1-${i}`)],
      );
    });
  });
}

function client2(baseUrl: string, tls: { cert: Buffer } | undefined) {
  return createClient(
    TestService,
    createConnectTransport({ baseUrl, httpVersion: "2", nodeOptions: tls ? { ca: tls.cert } : undefined }),
  );
}

describe("native gRPC over HTTP/1.1", () => {
  it("is refused with a 415 that says HTTP/2 is needed", async () => {
    const upstream = await startGrpcJsServer();
    const bridge = await startBridge(upstream.address);
    try {
      const res = await send(`${bridge.baseUrl}/bridge.test.v1.TestService/Unary`, {
        headers: { "content-type": "application/grpc" },
        body: echoRequest({}),
      });
      assert.equal(res.status, 415);
      assert.match(res.body.toString(), /needs HTTP\/2/);
    } finally {
      await bridge.close();
      await upstream.close();
    }
  });
});

describe("h2load smoke: many concurrent streams on one h2c connection", { skip: !hasH2load() && !process.env.CI ? "h2load not installed" : false }, () => {
  it("serves 2000 native gRPC calls, 100 at a time on one connection, all 200", async () => {
    const upstream = await startGrpcJsServer();
    const bridge = await startBridge(upstream.address);
    const dir = mkdtempSync(join(tmpdir(), "bridge-h2load-"));
    try {
      const body = join(dir, "body");
      const message = echoRequest({ text: "load" });
      const frame = Buffer.alloc(5 + message.byteLength);
      frame.writeUInt32BE(message.byteLength, 1);
      message.copy(frame, 5);
      writeFileSync(body, frame);
      const out = await new Promise<string>((resolve, reject) => {
        import("node:child_process").then(({ execFile }) =>
          execFile(
            "h2load",
            ["-n", "2000", "-c", "1", "-m", "100", "-H", "content-type: application/grpc", "-H", "te: trailers", "-d", body,
              `http://127.0.0.1:${bridge.port}/bridge.test.v1.TestService/Unary`],
            (error, stdout) => (error ? reject(error) : resolve(stdout)),
          ),
        );
      });
      assert.match(out, /2000 succeeded, 0 failed, 0 errored/);
      assert.match(out, /status codes: 2000 2xx/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await bridge.close();
      await upstream.close();
    }
  });
});

function hasH2load(): boolean {
  try {
    execFileSync("h2load", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("HTTP/2 requests get the same policies as HTTP/1.1 ones", () => {
  it("upstream resets reach the gRPC client with the same code; limits and CORS apply", async () => {
    const { startFaultServer } = await import("../support/fault-server.js");
    const faults = await startFaultServer();
    const bridge = await startBridge(faults.address, {
      maxRequestBytes: 1024,
      cors: { allowedOrigins: ["http://app.test"] },
    });
    const session = http2.connect(bridge.baseUrl);
    const call = (path: string, headers: http2.OutgoingHttpHeaders, body: Buffer) =>
      new Promise<{ headers?: http2.IncomingHttpHeaders; trailers?: http2.IncomingHttpHeaders; rstCode: number }>((resolve) => {
        const stream = session.request({ ":method": "POST", ":path": path, ...headers });
        let responseHeaders: http2.IncomingHttpHeaders | undefined;
        let trailers: http2.IncomingHttpHeaders | undefined;
        stream.on("response", (h) => (responseHeaders = h));
        stream.on("trailers", (t) => (trailers = t));
        stream.on("error", () => {});
        stream.resume();
        stream.on("close", () => resolve({ headers: responseHeaders, trailers, rstCode: stream.rstCode }));
        stream.end(body);
      });
    try {
      const grpcHeaders = { "content-type": "application/grpc", te: "trailers" };
      const refused = await call("/f.F/ResetRefusedStream", grpcHeaders, Buffer.from([0, 0, 0, 0, 0]));
      assert.equal(refused.rstCode, http2.constants.NGHTTP2_REFUSED_STREAM);

      const tooBig = Buffer.alloc(5 + 2048);
      tooBig.writeUInt32BE(2048, 1);
      const limited = await call("/f.F/Silent", grpcHeaders, tooBig);
      const status = limited.trailers?.["grpc-status"] ?? limited.headers?.["grpc-status"];
      assert.equal(status, String(grpc.status.RESOURCE_EXHAUSTED));

      const preflight = await new Promise<http2.IncomingHttpHeaders>((resolve) => {
        const stream = session.request({
          ":method": "OPTIONS",
          ":path": "/f.F/Any",
          origin: "http://app.test",
          "access-control-request-method": "POST",
        });
        stream.on("response", resolve);
        stream.resume();
        stream.end();
      });
      assert.equal(preflight["access-control-allow-origin"], "http://app.test");
    } finally {
      session.close();
      await bridge.close();
      await faults.close();
    }
  });
});
