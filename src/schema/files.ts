/**
 * Turns loose FileDescriptorProtos (from a descriptor set or from server
 * reflection) into a protobuf-es FileRegistry, and indexes the services and
 * methods a bridge needs to look up per call.
 */
import { createFileRegistry, type DescFile, type DescMethod, type FileRegistry } from "@bufbuild/protobuf";
import {
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
import { normaliseFiles, servicesOf, type BrokenFile } from "./normalise.js";

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

/** A registry of the usable files, and the files that could not be used. */
export interface LoadedFiles {
  registry: FileRegistry;
  broken: BrokenFile[];
}

/**
 * Builds a registry from files in any order, from any source (normalise.ts
 * brings protobufjs-built descriptors into protoc's form first). Each file is
 * added after its imports (createFileRegistry wants them first) and on its
 * own, so a file protobuf-es rejects costs only itself and its importers.
 * `origin` names where the files came from, for the reasons; `absent` says
 * why a file some of them import is not there, where the caller knows.
 */
export function registryFromFiles(files: Iterable<FileDescriptorProto>, origin: string, absent?: ReadonlyMap<string, string>): LoadedFiles {
  const normalised = normaliseFiles(files, bundled, absent);
  const broken = new Map(normalised.broken.map((file) => [file.name, file]));
  const byName = new Map(normalised.files.map((file) => [file.name, file]));
  const built = new Map<string, DescFile>();
  const visiting = new Set<string>();
  const registries: FileRegistry[] = [];
  const fail = (file: FileDescriptorProto, reason: string) => {
    broken.set(file.name, { name: file.name, reason, services: servicesOf(file) });
  };
  const visit = (name: string, importer: string | undefined): DescFile | string => {
    const done = built.get(name) ?? (byName.has(name) ? undefined : bundled.get(name));
    if (done !== undefined) return done;
    const failed = broken.get(name);
    if (failed !== undefined) return failed.reason;
    const file = byName.get(name);
    if (file === undefined) {
      return `file "${name}" imported by "${importer}" is missing (build descriptor sets with imports, e.g. buf build or protoc --include_imports)`;
    }
    if (visiting.has(name)) return `import cycle through "${name}"`;
    visiting.add(name);
    try {
      for (const dependency of file.dependency) {
        const result = visit(dependency, name);
        if (typeof result === "string") {
          const failed = broken.get(dependency);
          const reason = failed === undefined ? result : `it imports "${dependency}", which cannot be used: ${failed.reason}`;
          fail(file, reason);
          return reason;
        }
      }
      const registry = createFileRegistry(file, (dependency) => built.get(dependency) ?? bundled.get(dependency));
      built.set(name, registry.getFile(name)!);
      registries.push(registry);
      return built.get(name)!;
    } catch (error) {
      // Some of protobuf-es's checks throw without a message.
      const reason = (error as Error).message || `@bufbuild/protobuf rejected it without saying why (${(error as Error).stack?.split("\n")[1]?.trim() ?? "no stack"})`;
      fail(file, reason);
      return reason;
    } finally {
      visiting.delete(name);
    }
  };
  for (const name of byName.keys()) visit(name, undefined);
  return {
    registry: createFileRegistry(...registries),
    broken: [...broken.values()].map((file) => ({ ...file, reason: `${origin}: file "${file.name}" cannot be used: ${file.reason}` })),
  };
}

/** Imports of `files` that are neither among them, nor bundled, nor known to be `absent`. */
export function missingImports(files: ReadonlyMap<string, FileDescriptorProto>, absent: ReadonlyMap<string, string> = new Map()): string[] {
  const missing = new Set<string>();
  for (const file of files.values()) {
    for (const dependency of file.dependency) {
      if (!files.has(dependency) && !bundled.has(dependency) && !absent.has(dependency)) missing.add(dependency);
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
  private readonly brokenServices = new Map<string, BrokenFile>();

  /** @param broken files that could not be used: their services' methods are reported, not passed through. */
  constructor(
    readonly registries: readonly FileRegistry[],
    broken: readonly BrokenFile[] = [],
  ) {
    for (const file of broken) for (const service of file.services) this.brokenServices.set(service, file);
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

  /** The unusable file that declares the service of `/package.Service/Method`, if one does. */
  brokenFileOf(path: string): BrokenFile | undefined {
    return this.brokenServices.size === 0 ? undefined : this.brokenServices.get(path.slice(1, path.lastIndexOf("/")));
  }

  get serviceCount(): number {
    return this.services.size;
  }
}
