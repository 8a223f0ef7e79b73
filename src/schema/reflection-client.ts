/**
 * A gRPC server reflection client (grpc.reflection.v1, falling back to
 * v1alpha) that runs over the same Upstream as the bridged calls, and
 * fetches every file descriptor the upstream's services need.
 */
import * as http2 from "node:http2";
import { create, fromBinary, toBinary, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import {
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { encodeEnvelope, envelopeHeaderLength } from "../protocol/envelope.js";
import { grpcTimeoutHeader } from "../protocol/timeout.js";
import { grpcStatusError } from "../protocol/error-json.js";
import { toHeaders } from "../protocol/metadata.js";
import type { Upstream } from "../upstream/upstream.js";
import { FrameAssembler } from "../protocol/frame-assembler.js";
import { missingImports, registryFromFiles } from "./files.js";

/** v1alpha's messages are wire-identical to v1's: only the path differs. */
const reflectionPaths = [
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/** Fetches the upstream's services and the files that define them. */
export async function fetchReflectedSchema(upstream: Upstream, timeoutMs: number): Promise<FileRegistry> {
  let lastError: unknown;
  for (const path of reflectionPaths) {
    const stream = new ReflectionStream(upstream, path, timeoutMs);
    try {
      return await fetchWith(stream, upstream);
    } catch (error) {
      lastError = error;
      // Only "this server has no v1" moves on to v1alpha.
      if (!(error instanceof ReflectionError && error.unimplemented)) throw error;
    } finally {
      stream.close();
    }
  }
  throw lastError;
}

async function fetchWith(stream: ReflectionStream, upstream: Upstream): Promise<FileRegistry> {
  const listed = await stream.ask({ case: "listServices", value: "" });
  if (listed.messageResponse.case !== "listServicesResponse") throw unexpected(listed, "listServicesResponse");
  const files = new Map<string, FileDescriptorProto>();
  const add = (response: ServerReflectionResponse, what: string) => {
    if (response.messageResponse.case === "errorResponse") {
      const { errorCode, errorMessage } = response.messageResponse.value;
      throw new Error(`reflection of ${upstream.name}: ${what}: error ${errorCode} ${errorMessage}`);
    }
    if (response.messageResponse.case !== "fileDescriptorResponse") throw unexpected(response, "fileDescriptorResponse");
    for (const bytes of response.messageResponse.value.fileDescriptorProto) {
      const file = fromBinary(FileDescriptorProtoSchema, bytes);
      if (!files.has(file.name)) files.set(file.name, file);
    }
  };
  let firstFailure: Error | undefined;
  let described = 0;
  for (const { name } of listed.messageResponse.value.service) {
    // Servers list themselves; the bridge has no use for reflection's own schema.
    if (name.startsWith("grpc.reflection.")) continue;
    try {
      add(await stream.ask({ case: "fileContainingSymbol", value: name }), `file containing ${name}`);
      described++;
    } catch (error) {
      // One service the server cannot describe should not cost the others their schema.
      if (!(error instanceof Error) || error instanceof ReflectionError) throw error;
      firstFailure ??= error;
    }
  }
  if (described === 0 && firstFailure !== undefined) throw firstFailure;
  // Servers send a file's imports too, but not always all of them.
  for (let missing = missingImports(files); missing.length > 0; missing = missingImports(files)) {
    for (const name of missing) add(await stream.ask({ case: "fileByFilename", value: name }), `file ${name}`);
  }
  return registryFromFiles(files.values(), `reflection of ${upstream.name}`);
}

function unexpected(response: ServerReflectionResponse, expected: string): Error {
  return new Error(`reflection answered ${response.messageResponse.case ?? "nothing"} where ${expected} was expected`);
}

/** The reflection stream itself failed (as opposed to one answer). */
class ReflectionError extends Error {
  constructor(
    message: string,
    readonly unimplemented: boolean,
  ) {
    super(message);
  }
}

/**
 * One ServerReflectionInfo stream: requests go out one at a time, each
 * answered by the next response. Written on the raw HTTP/2 stream the
 * Upstream hands out, so reflection takes the same path (and connection
 * pool) as the calls it describes.
 */
class ReflectionStream {
  private readonly stream: http2.ClientHttp2Stream | undefined;
  private readonly waiting: { resolve(r: ServerReflectionResponse): void; reject(e: Error): void }[] = [];
  private readonly frames = new FrameAssembler();
  private failure: Error | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    upstream: Upstream,
    path: string,
    timeoutMs: number,
  ) {
    this.timer = setTimeout(() => this.fail(new ReflectionError(`reflection of ${upstream.name} timed out after ${timeoutMs} ms`, false)), timeoutMs);
    try {
      this.stream = upstream.request({
        ":method": "POST",
        ":path": path,
        ":authority": upstream.authority,
        "content-type": "application/grpc",
        te: "trailers",
        "grpc-timeout": grpcTimeoutHeader(timeoutMs),
      });
    } catch (error) {
      this.stream = undefined;
      this.fail(new ReflectionError(`reflection of ${upstream.name}: ${(error as Error).message}`, false));
      return;
    }
    const stream = this.stream;
    let status: string | undefined;
    let message = "";
    const readStatus = (headers: http2.IncomingHttpHeaders) => {
      if (headers["grpc-status"] !== undefined) {
        status = String(headers["grpc-status"]);
        message = grpcStatusError(toHeaders(headers))?.rawMessage ?? "";
      }
    };
    stream.on("response", readStatus);
    stream.on("trailers", readStatus);
    stream.on("data", (chunk: Buffer) => {
      for (const frame of this.frames.push(chunk)) {
        const next = this.waiting.shift();
        if (next === undefined) continue;
        try {
          next.resolve(fromBinary(ServerReflectionResponseSchema, frame.subarray(envelopeHeaderLength)));
        } catch (error) {
          next.reject(new Error(`reflection of ${upstream.name} sent a message that does not decode: ${(error as Error).message}`));
        }
      }
    });
    stream.on("error", () => {}); // reported through 'close'
    stream.on("close", () => {
      const where = `reflection of ${upstream.name} (${path})`;
      if (status === undefined || status === "0") {
        this.fail(new ReflectionError(`${where} ended before answering (HTTP/2 code ${stream.rstCode})`, false));
      } else {
        this.fail(new ReflectionError(`${where} failed: grpc-status ${status} ${message}`, status === "12"));
      }
    });
  }

  ask(request: ServerReflectionRequest["messageRequest"]): Promise<ServerReflectionResponse> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const message = create(ServerReflectionRequestSchema, { messageRequest: request });
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.stream!.write(encodeEnvelope(0, toBinary(ServerReflectionRequestSchema, message)));
    });
  }

  close(): void {
    clearTimeout(this.timer);
    const stream = this.stream;
    if (stream !== undefined && !stream.destroyed) {
      if (stream.writable) stream.end();
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }
  }

  private fail(error: Error): void {
    clearTimeout(this.timer);
    this.failure ??= error;
    for (const waiter of this.waiting.splice(0)) waiter.reject(this.failure);
  }
}
