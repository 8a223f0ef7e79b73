/**
 * A gRPC server reflection client (grpc.reflection.v1, falling back to
 * v1alpha) that runs over the same Upstream as the bridged calls, as one of
 * the bridge's own calls (upstream/own-call.ts: same attempts, deadline and
 * response-size limit), and fetches every file descriptor the upstream's
 * services need.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import {
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import type { CallEnd, StartCall } from "../call.js";
import { Code } from "../protocol/status.js";
import type { Upstream } from "../upstream/upstream.js";
import { OwnCall, OwnCallError } from "../upstream/own-call.js";
import { upstreamStartCall } from "../upstream/start-call.js";
import { missingImports, registryFromFiles, type LoadedFiles } from "./files.js";
import type { BrokenFile } from "./normalise.js";

/** v1alpha's messages are wire-identical to v1's: only the path differs. */
const reflectionPaths = [
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/**
 * Fetches the upstream's services and the files that define them. Files
 * that cannot be used (reported in `broken`, by name and why) cost only
 * their own services.
 *
 * @param maxResponseMessageBytes largest reflection answer accepted (the bridge's maxResponseBytes).
 */
export async function fetchReflectedSchema(upstream: Upstream, timeoutMs: number, maxResponseMessageBytes: number): Promise<LoadedFiles> {
  const start = upstreamStartCall(upstream, { maxResponseMessageBytes });
  let lastError: unknown;
  for (const path of reflectionPaths) {
    const stream = new ReflectionStream(start, upstream.name, path, timeoutMs);
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

async function fetchWith(stream: ReflectionStream, upstream: Upstream): Promise<LoadedFiles> {
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
  const undescribed: BrokenFile[] = [];
  for (const { name } of listed.messageResponse.value.service) {
    // Servers list themselves; the bridge has no use for reflection's own schema.
    if (name.startsWith("grpc.reflection.")) continue;
    try {
      add(await stream.ask({ case: "fileContainingSymbol", value: name }), `file containing ${name}`);
    } catch (error) {
      // One service the server cannot describe should not cost the others their schema.
      if (!(error instanceof Error) || error instanceof ReflectionError) throw error;
      firstFailure ??= error;
      undescribed.push({ name: `file containing ${name}`, reason: error.message, services: [name] });
    }
  }
  if (files.size === 0 && firstFailure !== undefined) throw firstFailure;
  // Servers send a file's imports too, but not always all of them; one the server cannot send costs only its importers.
  const absent = new Map<string, string>();
  for (let missing = missingImports(files, absent); missing.length > 0; missing = missingImports(files, absent)) {
    for (const name of missing) {
      try {
        add(await stream.ask({ case: "fileByFilename", value: name }), `file ${name}`);
        if (!files.has(name)) absent.set(name, `the server answered for "${name}" without it`);
      } catch (error) {
        if (!(error instanceof Error) || error instanceof ReflectionError) throw error;
        absent.set(name, error.message);
      }
    }
  }
  const loaded = registryFromFiles(files.values(), `reflection of ${upstream.name}`, absent);
  return { registry: loaded.registry, broken: [...loaded.broken, ...undescribed] };
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
 * answered by the next response, over the same Upstream (and connection
 * pool) as the calls it describes.
 */
class ReflectionStream {
  private readonly waiting: { resolve(r: ServerReflectionResponse): void; reject(e: Error): void }[] = [];
  private failure: Error | undefined;
  private readonly call: OwnCall;

  constructor(start: StartCall, name: string, path: string, timeoutMs: number) {
    this.call = new OwnCall(start, path, timeoutMs, {
      onMessage: (bytes) => {
        const next = this.waiting.shift();
        if (next === undefined) return;
        try {
          next.resolve(fromBinary(ServerReflectionResponseSchema, bytes));
        } catch (error) {
          next.reject(new Error(`reflection of ${name} sent a message that does not decode: ${(error as Error).message}`));
        }
      },
      onEnd: (end: CallEnd) => this.fail(endError(end, name, path, timeoutMs)),
    });
  }

  ask(request: ServerReflectionRequest["messageRequest"]): Promise<ServerReflectionResponse> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const message = create(ServerReflectionRequestSchema, { messageRequest: request });
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.call.send(toBinary(ServerReflectionRequestSchema, message));
    });
  }

  close(): void {
    this.call.cancel("reflection done");
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiting.splice(0)) waiter.reject(this.failure);
  }
}

/** Why the reflection stream ended: it never ends well while the bridge still asks. */
function endError(end: CallEnd, name: string, path: string, timeoutMs: number): ReflectionError {
  const where = `reflection of ${name} (${path})`;
  const error = end.error;
  if (error === undefined) return new ReflectionError(`${where} ended before answering`, false);
  if (error.code === Code.DeadlineExceeded) {
    return new ReflectionError(`reflection of ${name} timed out after ${timeoutMs} ms`, false);
  }
  const described = new OwnCallError({ ...end, error });
  return new ReflectionError(`${where} failed: ${described.message}`, error.code === Code.Unimplemented);
}
