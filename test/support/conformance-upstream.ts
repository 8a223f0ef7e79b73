/**
 * Upstreams that answer the Connect conformance suite's ConformanceService the
 * way its reference server does (connectrpc/conformance,
 * internal/app/referenceserver/impl.go) for the Errors and Duplicate Metadata
 * cases: response headers and trailers as the request's definition says, data
 * messages carrying what the server saw of the call (RequestInfo), and errors
 * with a code, a message and, when nothing else told the client what the
 * server saw, a RequestInfo appended to the details.
 *
 * Two real servers, as people run them:
 * - @grpc/grpc-js with a service built by @grpc/proto-loader from
 *   conformance/service.proto (proto only). Headers go out with
 *   `sendMetadata` before the status, so errors arrive as headers then trailers.
 * - @connectrpc/connect-node serving native gRPC only, proto and JSON
 *   (application/grpc+json), the upstream for JSON calls the bridge forwards
 *   without a schema. Unary errors carry all their metadata in the error, as
 *   connect-go's reference server does: a trailers-only response.
 *
 * Each server records the error details it sent, by the call's `x-test-id`
 * header, so a test can check the client got those exact bytes.
 */
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import {
  create,
  createFileRegistry,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescService,
  type Message,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { encodeRpcStatus } from "./grpc-definition.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const protoDir = join(root, "test/support/conformance");
const pkg = "connectrpc.conformance.v1";

/** What @grpc/proto-loader made of service.proto; grpc-js serves it. */
export const packageDefinition = protoLoader.loadSync(join(protoDir, "service.proto"), { keepCase: false, longs: String, defaults: false, oneofs: true });

/**
 * The same file as protobuf-es descriptors, for clients and connect-node,
 * compiled by buf as a user would (proto-loader's own descriptors use relative
 * type names, which protobuf-es does not resolve).
 */
export const conformanceRegistry = createFileRegistry(
  fromBinary(
    FileDescriptorSetSchema,
    (await promisify(execFile)(join(root, "node_modules/.bin/buf"), ["build", protoDir, "-o", "-"], { cwd: root, encoding: "buffer" })).stdout,
  ),
);

function message(name: string): DescMessage {
  const desc = conformanceRegistry.getMessage(`${pkg}.${name}`);
  if (desc === undefined) throw new Error(`no message ${name} in service.proto`);
  return desc;
}

export const ConformanceService: DescService = conformanceRegistry.getService(`${pkg}.ConformanceService`)!;
export const RequestInfoSchema = message("ConformancePayload.RequestInfo");
export const requestSchemas = {
  unary: message("UnaryRequest"),
  serverStream: message("ServerStreamRequest"),
  clientStream: message("ClientStreamRequest"),
  bidiStream: message("BidiStreamRequest"),
};
const responseSchemas = {
  unary: message("UnaryResponse"),
  serverStream: message("ServerStreamResponse"),
  clientStream: message("ClientStreamResponse"),
  bidiStream: message("BidiStreamResponse"),
};

export interface Header {
  name: string;
  value: string[];
}

export interface AnyMessage {
  typeUrl: string;
  value: Uint8Array;
}

/** A response definition, whichever library decoded it. */
interface Definition {
  headers: Header[];
  trailers: Header[];
  data: Uint8Array[];
  error?: { code: number; message: string; details: AnyMessage[] };
}

/** What an upstream sent as error details for one call. */
export interface SentError {
  details: AnyMessage[];
}

export interface ConformanceUpstream {
  address: string;
  /** By the call's x-test-id. */
  sentErrors: Map<string, SentError>;
  close(): Promise<void>;
}

const requestInfoTypeUrl = `type.googleapis.com/${RequestInfoSchema.typeName}`;

function requestInfoBytes(headers: Header[], requests: AnyMessage[], timeoutMs: number | undefined): Uint8Array {
  return toBinary(
    RequestInfoSchema,
    create(RequestInfoSchema, {
      requestHeaders: headers,
      requests,
      ...(timeoutMs === undefined ? {} : { timeoutMs: BigInt(timeoutMs) }),
    } as never),
  );
}

/** The details the reference server sends: the definition's own, then a RequestInfo when asked to. */
function errorDetails(def: Definition, requestInfo: Uint8Array | undefined): AnyMessage[] {
  const details = [...def.error!.details];
  if (requestInfo !== undefined) details.push({ typeUrl: requestInfoTypeUrl, value: requestInfo });
  return details;
}

// ---------------------------------------------------------------------------
// @grpc/grpc-js + @grpc/proto-loader

/** A message as proto-loader decodes it (camelCase, oneofs named, bytes as Buffer). */
type Loaded = Record<string, unknown>;

function loadedHeaders(list: unknown): Header[] {
  return ((list as Loaded[] | undefined) ?? []).map((h) => ({ name: String(h.name), value: ((h.value as string[] | undefined) ?? []).map(String) }));
}

function loadedDefinition(def: Loaded | undefined | null): Definition | undefined {
  if (def === undefined || def === null) return undefined;
  const error = def.error as Loaded | undefined | null;
  const data = def.responseData;
  return {
    headers: loadedHeaders(def.responseHeaders),
    trailers: loadedHeaders(def.responseTrailers),
    data: data === undefined || data === null ? [] : Array.isArray(data) ? (data as Buffer[]) : [data as Buffer],
    error:
      error === undefined || error === null
        ? undefined
        : {
            code: Number(error.code ?? 0),
            message: String(error.message ?? ""),
            details: ((error.details as Loaded[] | undefined) ?? []).map((d) => ({ typeUrl: String(d.type_url), value: d.value as Buffer })),
          },
  };
}

function metadataHeaders(metadata: grpc.Metadata): Header[] {
  const headers: Header[] = [];
  for (const [name, values] of Object.entries(metadata.toJSON())) {
    if (name.endsWith("-bin")) continue;
    headers.push({ name, value: values.map(String) });
  }
  return headers;
}

function toMetadata(...lists: Header[][]): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const list of lists) for (const h of list) for (const v of h.value) metadata.add(h.name, v);
  return metadata;
}

function deadlineMs(call: { getDeadline(): grpc.Deadline }): number | undefined {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/** The reference server on @grpc/grpc-js, its service definition from @grpc/proto-loader. */
export async function startConformanceGrpcJs(): Promise<ConformanceUpstream> {
  const sentErrors = new Map<string, SentError>();
  const service = packageDefinition[`${pkg}.ConformanceService`] as grpc.ServiceDefinition;
  // The request as the client sent it, re-encoded by the method's own serializer.
  const asAny = (method: string, req: unknown): AnyMessage => ({
    typeUrl: `type.googleapis.com/${pkg}.${method}Request`,
    value: service[method].requestSerialize(req),
  });
  const testId = (metadata: grpc.Metadata) => String(metadata.get("x-test-id")[0] ?? "");
  const status = (id: string, def: Definition, trailer: grpc.Metadata, requestInfo: Uint8Array | undefined): Partial<grpc.StatusObject> => {
    const details = errorDetails(def, requestInfo);
    sentErrors.set(id, { details });
    if (details.length > 0) {
      trailer.set(
        "grpc-status-details-bin",
        encodeRpcStatus(def.error!.code, def.error!.message, details.map((d) => ({ typeName: d.typeUrl.slice(d.typeUrl.lastIndexOf("/") + 1), value: d.value }))),
      );
    }
    return { code: def.error!.code, details: def.error!.message, metadata: trailer };
  };
  const payload = (data: Uint8Array | undefined, info: Uint8Array | undefined) => ({
    payload: { data: data ?? Buffer.alloc(0), ...(info === undefined ? {} : { requestInfo: fromBinaryLoaded(info) }) },
  });
  // proto-loader serializes plain objects; RequestInfo is built once with protobuf-es and handed over decoded.
  const fromBinaryLoaded = (info: Uint8Array) => {
    const decoded = fromBinary(RequestInfoSchema, info) as unknown as { requestHeaders: Header[]; requests: AnyMessage[]; timeoutMs?: bigint };
    return {
      requestHeaders: decoded.requestHeaders.map((h) => ({ name: h.name, value: [...h.value] })),
      // protobufjs's bundled Any keeps its snake_case field name whatever keepCase says.
      requests: decoded.requests.map((r) => ({ type_url: r.typeUrl, value: Buffer.from(r.value) })),
      ...(decoded.timeoutMs === undefined ? {} : { timeoutMs: String(decoded.timeoutMs) }),
    };
  };

  const server = new grpc.Server();
  server.addService(service, {
    Unary: (call: grpc.ServerUnaryCall<Loaded, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const def = loadedDefinition(call.request.responseDefinition as Loaded | undefined);
      const info = requestInfoBytes(metadataHeaders(call.metadata), [asAny("Unary", call.request)], deadlineMs(call));
      if (def?.error) {
        call.sendMetadata(toMetadata(def.headers));
        return callback(status(testId(call.metadata), def, toMetadata(def.trailers), info));
      }
      call.sendMetadata(toMetadata(def?.headers ?? []));
      callback(null, payload(def?.data[0], info), toMetadata(def?.trailers ?? []));
    },
    ServerStream: (call: grpc.ServerWritableStream<Loaded, unknown>) => {
      const def = loadedDefinition(call.request.responseDefinition as Loaded | undefined);
      const info = requestInfoBytes(metadataHeaders(call.metadata), [asAny("ServerStream", call.request)], deadlineMs(call));
      call.sendMetadata(toMetadata(def?.headers ?? []));
      const data = def?.data ?? [];
      data.forEach((d, i) => call.write(payload(d, i === 0 ? info : undefined)));
      if (def?.error) call.emit("error", status(testId(call.metadata), def, toMetadata(def.trailers), data.length === 0 ? info : undefined));
      else call.end(toMetadata(def?.trailers ?? []));
    },
    ClientStream: (call: grpc.ServerReadableStream<Loaded, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const requests: AnyMessage[] = [];
      let def: Definition | undefined;
      call.on("data", (req: Loaded) => {
        if (requests.length === 0) def = loadedDefinition(req.responseDefinition as Loaded | undefined);
        requests.push(asAny("ClientStream", req));
      });
      call.on("end", () => {
        const info = requestInfoBytes(metadataHeaders(call.metadata), requests, deadlineMs(call));
        call.sendMetadata(toMetadata(def?.headers ?? []));
        if (def?.error) return callback(status(testId(call.metadata), def, toMetadata(def.trailers), info));
        callback(null, payload(def?.data[0], info), toMetadata(def?.trailers ?? []));
      });
    },
    BidiStream: (call: grpc.ServerDuplexStream<Loaded, unknown>) => {
      let def: Definition | undefined;
      let fullDuplex = false;
      let requests: AnyMessage[] = [];
      let sent = 0;
      let done = false;
      const headers = () => metadataHeaders(call.metadata);
      const finish = () => {
        if (done) return;
        done = true;
        const data = def?.data ?? [];
        for (; sent < data.length; sent++) call.write(payload(data[sent], sent === 0 ? requestInfoBytes(headers(), requests, deadlineMs(call)) : undefined));
        if (def?.error) {
          const info = sent === 0 ? requestInfoBytes(headers(), requests, deadlineMs(call)) : undefined;
          call.emit("error", status(testId(call.metadata), def, toMetadata(def.trailers), info));
        } else {
          call.end(toMetadata(def?.trailers ?? []));
        }
      };
      call.on("data", (req: Loaded) => {
        if (done) return;
        if (requests.length === 0 && sent === 0) {
          def = loadedDefinition(req.responseDefinition as Loaded | undefined);
          fullDuplex = req.fullDuplex === true;
          call.sendMetadata(toMetadata(def?.headers ?? []));
        }
        requests.push(asAny("BidiStream", req));
        if (!fullDuplex) return;
        // One response per request; a request with no response left to send ends the call.
        if (def === undefined || sent >= def.data.length) return finish();
        const info = sent === 0 ? requestInfoBytes(headers(), requests, deadlineMs(call)) : requestInfoBytes([], requests, undefined);
        call.write(payload(def.data[sent++], info));
        requests = [];
      });
      call.on("end", finish);
    },
  } as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
  );
  return {
    address: `127.0.0.1:${port}`,
    sentErrors,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => server.forceShutdown(), 2000).unref();
      }),
  };
}

// ---------------------------------------------------------------------------
// @connectrpc/connect-node, native gRPC only (proto and JSON)

/** A message as protobuf-es decodes it with a registry-built descriptor. */
type Es = Record<string, unknown>;

function esDefinition(def: Es | undefined): Definition | undefined {
  if (def === undefined) return undefined;
  const oneof = def.response as { case?: string; value?: unknown } | undefined;
  const error = (oneof?.case === "error" ? oneof.value : def.error) as Es | undefined;
  const data = oneof?.case === "responseData" ? [oneof.value as Uint8Array] : Array.isArray(def.responseData) ? (def.responseData as Uint8Array[]) : [];
  return {
    headers: def.responseHeaders as Header[],
    trailers: def.responseTrailers as Header[],
    data,
    error:
      error === undefined
        ? undefined
        : { code: error.code as number, message: (error.message as string | undefined) ?? "", details: error.details as AnyMessage[] },
  };
}

function contextHeaders(ctx: HandlerContext): Header[] {
  const headers: Header[] = [];
  ctx.requestHeader.forEach((value, name) => headers.push({ name, value: [value] }));
  return headers;
}

function applyHeaders(target: Headers, list: Header[]): void {
  for (const h of list) for (const v of h.value) target.append(h.name, v);
}

function timeout(ctx: HandlerContext): number | undefined {
  return ctx.timeoutMs();
}

/** The reference server on connect-node's gRPC handler (application/grpc and application/grpc+json). */
export async function startConformanceConnectGrpc(): Promise<ConformanceUpstream> {
  const sentErrors = new Map<string, SentError>();
  const asAny = (kind: keyof typeof requestSchemas, req: Message): AnyMessage => ({
    typeUrl: `type.googleapis.com/${requestSchemas[kind].typeName}`,
    value: toBinary(requestSchemas[kind], req),
  });
  const response = (kind: keyof typeof responseSchemas, data: Uint8Array | undefined, info: Uint8Array | undefined) =>
    create(responseSchemas[kind], {
      payload: { data: data ?? new Uint8Array(0), ...(info === undefined ? {} : { requestInfo: fromBinary(RequestInfoSchema, info) }) },
    } as never);
  const failure = (ctx: HandlerContext, def: Definition, info: Uint8Array | undefined, metadata?: Headers): ConnectError => {
    const details = errorDetails(def, info);
    sentErrors.set(ctx.requestHeader.get("x-test-id") ?? "", { details });
    const error = new ConnectError(def.error!.message, def.error!.code as Code, metadata);
    // Incoming-shaped details go out as they are: exactly these type names and bytes.
    error.details = details.map((d) => ({ type: d.typeUrl.slice(d.typeUrl.lastIndexOf("/") + 1), value: d.value }));
    return error;
  };
  const definitionOf = (req: Message) => esDefinition((req as unknown as Es).responseDefinition as Es | undefined);

  /** The answer of a unary or client-stream call: an error carries the headers and trailers as its metadata. */
  const singleAnswer = (ctx: HandlerContext, def: Definition | undefined, info: ReturnType<typeof requestInfoBytes>, kind: Parameters<typeof response>[0]) => {
    if (def?.error) {
      const metadata = new Headers();
      applyHeaders(metadata, def.headers);
      applyHeaders(metadata, def.trailers);
      throw failure(ctx, def, info, metadata);
    }
    applyHeaders(ctx.responseHeader, def?.headers ?? []);
    applyHeaders(ctx.responseTrailer, def?.trailers ?? []);
    return response(kind, def?.data[0], info);
  };

  const impl = {
    async unary(req: Message, ctx: HandlerContext) {
      const def = definitionOf(req);
      const info = requestInfoBytes(contextHeaders(ctx), [asAny("unary", req)], timeout(ctx));
      return singleAnswer(ctx, def, info, "unary");
    },
    async *serverStream(req: Message, ctx: HandlerContext) {
      const def = definitionOf(req);
      const info = requestInfoBytes(contextHeaders(ctx), [asAny("serverStream", req)], timeout(ctx));
      applyHeaders(ctx.responseHeader, def?.headers ?? []);
      applyHeaders(ctx.responseTrailer, def?.trailers ?? []);
      const data = def?.data ?? [];
      for (let i = 0; i < data.length; i++) yield response("serverStream", data[i], i === 0 ? info : undefined);
      if (def?.error) throw failure(ctx, def, data.length === 0 ? info : undefined);
    },
    async clientStream(requests: AsyncIterable<Message>, ctx: HandlerContext) {
      const seen: AnyMessage[] = [];
      let def: Definition | undefined;
      for await (const req of requests) {
        if (seen.length === 0) def = definitionOf(req);
        seen.push(asAny("clientStream", req));
      }
      const info = requestInfoBytes(contextHeaders(ctx), seen, timeout(ctx));
      return singleAnswer(ctx, def, info, "clientStream");
    },
    async *bidiStream(requests: AsyncIterable<Message>, ctx: HandlerContext) {
      let def: Definition | undefined;
      let fullDuplex = false;
      let seen: AnyMessage[] = [];
      let sent = 0;
      let first = true;
      for await (const req of requests) {
        if (first) {
          first = false;
          def = definitionOf(req);
          fullDuplex = (req as unknown as Es).fullDuplex === true;
          applyHeaders(ctx.responseHeader, def?.headers ?? []);
          applyHeaders(ctx.responseTrailer, def?.trailers ?? []);
        }
        seen.push(asAny("bidiStream", req));
        if (!fullDuplex) continue;
        if (def === undefined || sent >= def.data.length) break;
        const info = sent === 0 ? requestInfoBytes(contextHeaders(ctx), seen, timeout(ctx)) : requestInfoBytes([], seen, undefined);
        yield response("bidiStream", def.data[sent++], info);
        seen = [];
      }
      const data = def?.data ?? [];
      for (; sent < data.length; sent++) yield response("bidiStream", data[sent], sent === 0 ? requestInfoBytes(contextHeaders(ctx), seen, timeout(ctx)) : undefined);
      if (def?.error) throw failure(ctx, def, sent === 0 ? requestInfoBytes(contextHeaders(ctx), seen, timeout(ctx)) : undefined);
    },
  };
  const handler = connectNodeAdapter({
    routes: (router) => router.service(ConformanceService, impl as unknown as ServiceImpl<typeof ConformanceService>),
    connect: false,
    grpcWeb: false,
    grpc: true,
    jsonOptions: { registry: conformanceRegistry },
  });
  const server = http2.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    sentErrors,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        setTimeout(resolve, 1000).unref();
      }),
  };
}
