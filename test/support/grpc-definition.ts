/**
 * A @grpc/grpc-js service definition built from a protobuf-es descriptor, so
 * the grpc-js test server uses the same generated code as every client.
 */
import type { ServiceDefinition } from "@grpc/grpc-js";
import { fromBinary, toBinary, type DescService } from "@bufbuild/protobuf";

export function grpcServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, unknown> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (message: never) => Buffer.from(toBinary(method.input, message)),
      requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
      responseSerialize: (message: never) => Buffer.from(toBinary(method.output, message)),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
      originalName: method.localName,
    };
  }
  return definition as ServiceDefinition;
}

/** Encodes a google.rpc.Status by hand: tests must not depend on connect's internal copy. */
export function encodeRpcStatus(code: number, message: string, details: { typeName: string; value: Uint8Array }[]): Buffer {
  const parts: Buffer[] = [];
  const varint = (n: number) => {
    const out: number[] = [];
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
    return Buffer.from(out);
  };
  const field = (no: number, bytes: Uint8Array) => Buffer.concat([varint((no << 3) | 2), varint(bytes.byteLength), bytes]);
  parts.push(varint(1 << 3), varint(code));
  parts.push(field(2, Buffer.from(message)));
  for (const d of details) {
    const any = Buffer.concat([field(1, Buffer.from(`type.googleapis.com/${d.typeName}`)), field(2, d.value)]);
    parts.push(field(3, any));
  }
  return Buffer.concat(parts);
}
