/**
 * Turns loose FileDescriptorProtos (from a descriptor set or from server
 * reflection) into a protobuf-es FileRegistry, and indexes the services and
 * methods a bridge needs to look up per call.
 */
import { create, createFileRegistry, type DescFile, type DescMethod, type FileRegistry } from "@bufbuild/protobuf";
import {
  FileDescriptorSetSchema,
  file_google_protobuf_any,
  file_google_protobuf_api,
  file_google_protobuf_descriptor,
  file_google_protobuf_duration,
  file_google_protobuf_empty,
  file_google_protobuf_field_mask,
  file_google_protobuf_source_context,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_type,
  file_google_protobuf_wrappers,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";

/**
 * The well-known types protobuf-es bundles: a descriptor set made by
 * `protoc` without `--include_imports`, or a reflection server that leaves
 * them out, still resolves imports of google/protobuf/*.proto.
 */
const bundled = new Map<string, DescFile>(
  [
    file_google_protobuf_any,
    file_google_protobuf_api,
    file_google_protobuf_descriptor,
    file_google_protobuf_duration,
    file_google_protobuf_empty,
    file_google_protobuf_field_mask,
    file_google_protobuf_source_context,
    file_google_protobuf_struct,
    file_google_protobuf_timestamp,
    file_google_protobuf_type,
    file_google_protobuf_wrappers,
  ].map((file) => [file.proto.name, file]),
);

/**
 * Builds a registry from files in any order: each file's imports are added
 * before it (createFileRegistry wants them first). `origin` names where the
 * files came from, for the error when an import is missing.
 */
export function registryFromFiles(files: Iterable<FileDescriptorProto>, origin: string): FileRegistry {
  const byName = new Map<string, FileDescriptorProto>();
  for (const file of files) if (!byName.has(file.name)) byName.set(file.name, file);
  const ordered: FileDescriptorProto[] = [];
  const visited = new Set<string>();
  const visit = (name: string, importer: string | undefined): void => {
    if (visited.has(name)) return;
    visited.add(name);
    const file = byName.get(name) ?? bundled.get(name)?.proto;
    if (file === undefined) {
      throw new Error(`${origin}: file "${name}" imported by "${importer}" is missing (build descriptor sets with imports, e.g. buf build or protoc --include_imports)`);
    }
    for (const dependency of file.dependency) visit(dependency, name);
    ordered.push(file);
  };
  for (const name of byName.keys()) visit(name, undefined);
  return createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
}

/** Imports of `files` that are neither among them nor bundled. */
export function missingImports(files: ReadonlyMap<string, FileDescriptorProto>): string[] {
  const missing = new Set<string>();
  for (const file of files.values()) {
    for (const dependency of file.dependency) {
      if (!files.has(dependency) && !bundled.has(dependency)) missing.add(dependency);
    }
  }
  return [...missing];
}

/**
 * The services and methods of one or more registries, by gRPC path. Built
 * once per schema version; lookups are one Map.get.
 */
export class MethodIndex {
  private readonly methods = new Map<string, DescMethod>();
  private readonly services = new Set<string>();

  constructor(readonly registries: readonly FileRegistry[]) {
    for (const registry of registries) {
      for (const file of registry.files) {
        for (const service of file.services) {
          this.services.add(service.typeName);
          for (const method of service.methods) {
            const path = `/${service.typeName}/${method.name}`;
            if (!this.methods.has(path)) this.methods.set(path, method);
          }
        }
      }
    }
  }

  /** The method at `/package.Service/Method`, if the schema has it. */
  method(path: string): DescMethod | undefined {
    return this.methods.get(path);
  }

  /** Whether the schema describes the service of `/package.Service/Method`. */
  hasServiceOf(path: string): boolean {
    return this.services.has(path.slice(1, path.lastIndexOf("/")));
  }

  get serviceCount(): number {
    return this.services.size;
  }
}
