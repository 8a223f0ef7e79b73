/**
 * Descriptor set files as a schema source: a google.protobuf.FileDescriptorSet
 * (`protoc --include_imports --descriptor_set_out`) or a buf image
 * (`buf build -o schema.binpb`), which is wire-compatible with one.
 */
import { readFileSync } from "node:fs";
import { fromBinary, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { registryFromFiles } from "./files.js";

/** Reads and checks a descriptor set; throws an Error naming the file and the problem. */
export function loadDescriptorSet(source: string | Uint8Array, index: number): FileRegistry {
  const origin = typeof source === "string" ? `descriptor set "${source}"` : `descriptor set #${index} (bytes)`;
  let bytes: Uint8Array;
  try {
    bytes = typeof source === "string" ? readFileSync(source) : source;
  } catch (error) {
    throw new Error(`connect-grpc-bridge: cannot read ${origin}: ${(error as Error).message}`);
  }
  try {
    const set = fromBinary(FileDescriptorSetSchema, bytes);
    if (set.file.length === 0) throw new Error("it holds no files");
    const { registry, broken } = registryFromFiles(set.file, origin);
    // A descriptor set is configuration: a file in it that cannot be used stops the start.
    if (broken.length > 0) throw new Error(broken.map((file) => file.reason).join("; "));
    return registry;
  } catch (error) {
    const message = (error as Error).message;
    throw new Error(
      message.startsWith(origin)
        ? `connect-grpc-bridge: ${message}`
        : `connect-grpc-bridge: ${origin} is not a valid FileDescriptorSet or buf image: ${message}`,
    );
  }
}
