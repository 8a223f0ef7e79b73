/**
 * A page that calls the bridge from another origin with connect-web, over
 * both its Connect and gRPC-Web transports: unary, server streaming and an
 * error with details. Results land in `window.results` (read by the browser
 * test) and in the page.
 */
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { TestService, ErrorDetailSchema } from "../../gen/bridge/test/v1/test_pb.js";

interface Outcome {
  ok: boolean;
  value?: unknown;
  code?: string;
  message?: string;
}

const params = new URLSearchParams(location.search);
const bridge = params.get("bridge") ?? "http://127.0.0.1:8080";
const text = params.get("text") ?? "from the browser";
const log = document.getElementById("log")!;
const results: Record<string, Outcome> = {};
(window as unknown as { results: typeof results }).results = results;

async function run(name: string, body: () => Promise<unknown>): Promise<void> {
  try {
    results[name] = { ok: true, value: await body() };
  } catch (e) {
    const error = ConnectError.from(e);
    results[name] = { ok: false, code: Code[error.code], message: error.rawMessage };
  }
  log.textContent += `${name}: ${JSON.stringify(results[name])}\n`;
}

async function scenarios(label: string, transport: Transport): Promise<void> {
  const client = createClient(TestService, transport);
  await run(`${label} unary`, async () => {
    let header = "";
    const res = await client.unary({ text }, {
      headers: { "x-echo-page": "1" },
      onHeader: (h) => (header = h.get("x-echo-page") ?? ""),
    });
    return { text: res.text, header };
  });
  await run(`${label} server stream`, async () => {
    // Messages 150 ms apart: the first must arrive long before the stream ends.
    const start = performance.now();
    const arrivals: number[] = [];
    for await (const res of client.serverStream({ text: "s", responseCount: 3, delayMs: 150 })) {
      arrivals.push(Math.round(performance.now() - start));
      void res;
    }
    return { arrivals, end: Math.round(performance.now() - start) };
  });
  await run(`${label} error`, async () => {
    try {
      await client.unary({ text: "e", fail: { code: Code.PermissionDenied, message: "not you", withDetails: true } });
      return "no error";
    } catch (e) {
      const error = ConnectError.from(e);
      return {
        code: Code[error.code],
        message: error.rawMessage,
        reason: error.findDetails(ErrorDetailSchema)[0]?.reason,
      };
    }
  });
}

// Binary: most gRPC servers accept only protobuf (connect-web's default for
// the Connect transport is JSON).
await scenarios("connect", createConnectTransport({ baseUrl: bridge, useBinaryFormat: true }));
await scenarios("grpc-web", createGrpcWebTransport({ baseUrl: bridge, useBinaryFormat: true }));
(window as unknown as { done: boolean }).done = true;
