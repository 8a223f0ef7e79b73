/**
 * Brings FileDescriptorProtos from any source into the form protoc writes,
 * which is the form createFileRegistry (@bufbuild/protobuf) accepts.
 *
 * protoc, buf, grpc-go, grpc-java and grpc-python serve descriptors that are
 * already in that form, and pass through here unchanged. protobufjs (what
 * @grpc/proto-loader + @grpc/reflection serve) differs, as dumped from
 * @grpc/reflection 1.0.4 / protobufjs 7.6 for proto/bridge/test/reflect/v1:
 *
 * - type names are relative to the referring scope (`Kind`, `Nested.Inner`,
 *   `units.Money`, `google.protobuf.Timestamp`), not fully qualified; method
 *   input and output types are absolute;
 * - `dependency` is empty although types come from other files;
 * - files are per package, named after it (`bridge_test_reflect_v1.proto`):
 *   the .proto files of one package are merged, and the well-known types
 *   come as one `google_protobuf.proto` built from protobufjs's own copies;
 * - map entry types are named after the field (`Headers`, not
 *   `HeadersEntry`), with the map_entry option set;
 * - a proto3 `optional` field keeps its synthetic oneof (`_maybe`) but loses
 *   `proto3_optional` (protobufjs writes it under a name the encoder ignores);
 * - field names are lowerCamel unless the server's proto-loader has
 *   `keepCase: true`, and `json_name` is never set, not even when the .proto
 *   sets it.
 *
 * What this step does about each: resolves names by protoc's scoping rules
 * (innermost scope outwards, across files), records the files they point to
 * as dependencies, uses protobuf-es's bundled well-known types instead of
 * protobufjs's copies, renames map entries as protoc does, restores
 * proto3_optional. Field numbers and types are never changed, so the binary
 * form is exact. Field names are left as served; a missing `json_name` is
 * set to the lowerCamel of the name, as protoc does (protobuf-es needs it),
 * and the lowerCamel of a lowerCamel name is itself. What cannot be recovered: a `json_name`
 * the server dropped, and JSON input that spells fields by their original
 * snake_case names when the server serves camelCase ones.
 */
import { clone, isFieldSet, type DescFile } from "@bufbuild/protobuf";
import { protoCamelCase } from "@bufbuild/protobuf/reflect";
import {
  FieldDescriptorProtoSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  type DescriptorProto,
  type FieldDescriptorProto,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";

/** A file the bridge cannot use, and why. */
export interface BrokenFile {
  /** The file's name as the source gave it. */
  name: string;
  reason: string;
  /** Fully qualified names of the services the file declares. */
  services: string[];
}

export interface NormalisedFiles {
  /** Usable files, names fully qualified and dependencies listed. */
  files: FileDescriptorProto[];
  broken: BrokenFile[];
}

type SymbolKind = "package" | "message" | "enum" | "service";

interface SymbolEntry {
  kind: SymbolKind;
  /** The file declaring it (for packages: the first one seen). */
  file: string;
}

/**
 * The names a descriptor can refer to, fully qualified without the leading
 * dot. Only aggregates and types: protoc skips fields and enum values when it
 * resolves a type name, so they cannot shadow anything.
 */
export class SymbolTable {
  private readonly symbols = new Map<string, SymbolEntry>();

  /** Adds a file's symbols; returns the first name already declared by another file, if any. */
  add(file: FileDescriptorProto): string | undefined {
    let clash: string | undefined;
    const define = (name: string, kind: SymbolKind) => {
      const seen = this.symbols.get(name);
      if (seen === undefined) this.symbols.set(name, { kind, file: file.name });
      else if (kind !== "package" || seen.kind !== "package") clash ??= `${name} (also declared in "${seen.file}")`;
    };
    const parts = file.package === "" ? [] : file.package.split(".");
    for (let i = 1; i <= parts.length; i++) {
      const name = parts.slice(0, i).join(".");
      if (this.symbols.get(name)?.kind !== "package") define(name, "package");
    }
    const prefix = file.package === "" ? "" : `${file.package}.`;
    const message = (scope: string, proto: DescriptorProto) => {
      const name = scope + proto.name;
      define(name, "message");
      for (const nested of proto.nestedType) message(`${name}.`, nested);
      for (const nested of proto.enumType) define(`${name}.${nested.name}`, "enum");
    };
    for (const proto of file.messageType) message(prefix, proto);
    for (const proto of file.enumType) define(prefix + proto.name, "enum");
    for (const proto of file.service) define(prefix + proto.name, "service");
    return clash;
  }

  get(name: string): SymbolEntry | undefined {
    return this.symbols.get(name);
  }

  /**
   * Resolves a type name as protoc does (DescriptorBuilder::LookupSymbol):
   * an absolute `.a.b.C` as it is; a relative one from `scope` (the fully
   * qualified name of the message, service or package it appears in)
   * outwards. The first component is looked up in each scope; once it names
   * an aggregate, the rest must be inside it (protoc does not look further
   * out then). Returns the fully qualified name, with the leading dot.
   */
  resolve(name: string, scope: string): { name: string; entry: SymbolEntry } | { error: string } {
    if (name.startsWith(".")) {
      const entry = this.types(name.slice(1));
      return entry !== undefined ? { name, entry } : { error: `type "${name}" is not defined` };
    }
    const dot = name.indexOf(".");
    const first = dot < 0 ? name : name.slice(0, dot);
    for (let s = scope; ; ) {
      const candidate = s === "" ? first : `${s}.${first}`;
      const found = this.symbols.get(candidate);
      if (found !== undefined) {
        if (dot >= 0) {
          // Every symbol in the table is an aggregate: the rest must be in it.
          const full = candidate + name.slice(dot);
          const entry = this.types(full);
          return entry !== undefined
            ? { name: `.${full}`, entry }
            : { error: `type "${name}" resolved to "${candidate}", which has no "${name.slice(dot + 1)}" (looked from ${scope || "the top level"})` };
        }
        if (found.kind === "message" || found.kind === "enum") return { name: `.${candidate}`, entry: found };
      }
      if (s === "") return { error: `type "${name}" is not defined (looked from ${scope || "the top level"} outwards)` };
      const cut = s.lastIndexOf(".");
      s = cut < 0 ? "" : s.slice(0, cut);
    }
  }

  /**
   * Every type a relative `name` could mean from `scope`, innermost first:
   * what `name` names in each enclosing scope, not only the first that has
   * it. protoc takes the innermost; a descriptor whose writer shortened
   * names (protobufjs) may have meant any of them.
   */
  candidates(name: string, scope: string, kind?: "message" | "enum"): string[] {
    const found: string[] = [];
    for (let s = scope; ; ) {
      const full = s === "" ? name : `${s}.${name}`;
      const entry = this.types(full);
      if (entry !== undefined && (kind === undefined || entry.kind === kind)) found.push(full);
      if (s === "") return found;
      const cut = s.lastIndexOf(".");
      s = cut < 0 ? "" : s.slice(0, cut);
    }
  }

  private types(name: string): SymbolEntry | undefined {
    const entry = this.symbols.get(name);
    return entry?.kind === "message" || entry?.kind === "enum" ? entry : undefined;
  }
}

/** protoc's name for the entry type of map field `field` (MapEntryName in descriptor.cc). */
export function mapEntryName(field: string): string {
  let out = "";
  let upper = true;
  for (const c of field) {
    if (c === "_") upper = true;
    else if (upper) {
      out += c.toUpperCase();
      upper = false;
    } else out += c;
  }
  return `${out}Entry`;
}

/**
 * A served google.protobuf file whose types protobuf-es bundles (protobufjs
 * serves its own copies, merged into one file): the bundled, protoc-built
 * definitions replace it.
 */
function isServedWellKnownCopy(file: FileDescriptorProto, bundled: ReadonlyMap<string, DescFile>, bundledSymbols: SymbolTable): boolean {
  if (file.package !== "google.protobuf" || bundled.has(file.name) || file.service.length > 0 || file.extension.length > 0) return false;
  const names = [...file.messageType, ...file.enumType].map((t) => `google.protobuf.${t.name}`);
  return names.length > 0 && names.every((name) => bundledSymbols.get(name) !== undefined);
}

const needsTypeName = new Set([FieldDescriptorProto_Type.MESSAGE, FieldDescriptorProto_Type.ENUM, FieldDescriptorProto_Type.GROUP]);

/**
 * Normalises `input` (see the module comment); files that still cannot be
 * used are returned in `broken` with the reason, as are the files that
 * import them. `bundled` are the files protobuf-es ships, which any file may
 * refer to; `absent` says why an imported file is not among `input`, where
 * the caller knows (a reflection server's answer).
 */
export function normaliseFiles(
  input: Iterable<FileDescriptorProto>,
  bundled: ReadonlyMap<string, DescFile>,
  absent: ReadonlyMap<string, string> = new Map(),
): NormalisedFiles {
  const bundledSymbols = new SymbolTable();
  for (const file of bundled.values()) bundledSymbols.add(file.proto);
  const broken = new Map<string, BrokenFile>();
  const markBroken = (file: FileDescriptorProto, reason: string) => {
    if (!broken.has(file.name)) broken.set(file.name, { name: file.name, reason, services: servicesOf(file) });
  };

  const files: FileDescriptorProto[] = [];
  const symbols = new SymbolTable();
  const served = new Set<string>();
  for (const original of input) {
    if (served.has(original.name)) continue;
    served.add(original.name);
    if (isServedWellKnownCopy(original, bundled, bundledSymbols)) continue;
    const file = clone(FileDescriptorProtoSchema, original);
    // Entry types get their protoc names before any name is looked up.
    forEachMessage(file, renameMapEntries);
    const clash = symbols.add(file);
    if (clash !== undefined) markBroken(file, `it declares ${clash}`);
    else files.push(file);
  }
  // Bundled files are used only where nothing served declares the same name.
  for (const file of bundled.values()) if (!served.has(file.name)) symbols.add(file.proto);

  for (const file of files) {
    // A missing import explains the unresolved names that follow from it.
    const missing = file.dependency.find((name) => !served.has(name) && !bundled.has(name));
    if (missing !== undefined) {
      const why = absent.get(missing);
      markBroken(file, `it imports "${missing}", which is missing${why === undefined ? " (a descriptor set needs its imports: buf build, or protoc --include_imports)" : `: ${why}`}`);
      continue;
    }
    const problem = normaliseFile(file, symbols);
    if (problem !== undefined) markBroken(file, problem);
  }
  // A file that imports an unusable one is unusable too.
  for (let changed = true; changed; ) {
    changed = false;
    for (const file of files) {
      if (broken.has(file.name)) continue;
      const dependency = file.dependency.find((name) => broken.has(name));
      if (dependency !== undefined) {
        markBroken(file, `it imports "${dependency}", which cannot be used: ${broken.get(dependency)!.reason}`);
        changed = true;
      }
    }
  }
  return { files: files.filter((file) => !broken.has(file.name)), broken: [...broken.values()] };
}

/** Fully qualified names of the services `file` declares. */
export function servicesOf(file: FileDescriptorProto): string[] {
  const prefix = file.package === "" ? "" : `${file.package}.`;
  return file.service.map((service) => prefix + service.name);
}

/** Normalises one file in place; returns why it cannot be used, if so. */
function normaliseFile(file: FileDescriptorProto, symbols: SymbolTable): string | undefined {
  const dependencies = new Set(file.dependency);
  const problems: { what: string; error: string }[] = [];
  let ambiguous = false;
  const use = (name: string, scope: string, what: string, kind?: "message" | "enum"): string | undefined => {
    const resolved = symbols.resolve(name, scope);
    if ("error" in resolved) {
      problems.push({ what, error: resolved.error });
      return undefined;
    }
    if (!name.startsWith(".")) {
      // protobufjs writes `Inner` both for the Inner beside the field and for one further out that it shadows.
      const meant = symbols.candidates(name, scope, kind);
      if (meant.length > 1) {
        problems.push({ what, error: `type "${name}" is ambiguous in a descriptor with relative names: it may be ${meant.join(" or ")}` });
        ambiguous = true;
        return undefined;
      }
    }
    if (resolved.entry.file !== file.name) dependencies.add(resolved.entry.file);
    return resolved.name;
  };
  const resolveField = (field: FieldDescriptorProto, scope: string, what: string) => {
    if (field.typeName !== "") {
      const kind = field.type === FieldDescriptorProto_Type.ENUM ? "enum" : field.type === FieldDescriptorProto_Type.MESSAGE || field.type === FieldDescriptorProto_Type.GROUP ? "message" : undefined;
      const resolved = use(field.typeName, scope, what, kind);
      if (resolved !== undefined) {
        field.typeName = resolved;
        // protoc accepts a type_name with no type; so does this step.
        if (!isFieldSet(field, FieldDescriptorProtoSchema.field.type)) {
          field.type = symbols.get(resolved.slice(1))!.kind === "enum" ? FieldDescriptorProto_Type.ENUM : FieldDescriptorProto_Type.MESSAGE;
        }
      }
    } else if (needsTypeName.has(field.type)) {
      problems.push({ what, error: "a message or enum field without a type name" });
    }
    if (field.extendee !== "") {
      const resolved = use(field.extendee, scope, `${what} (extendee)`);
      if (resolved !== undefined) field.extendee = resolved;
    }
  };
  const message = (proto: DescriptorProto, scope: string) => {
    const name = `${scope === "" ? "" : `${scope}.`}${proto.name}`;
    restoreProto3Optional(proto, file);
    for (const field of proto.field) {
      resolveField(field, name, `field ${name}.${field.name}`);
      // protoc always writes json_name; protobuf-es takes it as given, and without it names the JSON field "".
      if (!isFieldSet(field, FieldDescriptorProtoSchema.field.jsonName)) field.jsonName = protoCamelCase(field.name);
    }
    for (const field of proto.extension) resolveField(field, name, `extension ${name}.${field.name}`);
    for (const nested of proto.nestedType) message(nested, name);
  };
  for (const proto of file.messageType) message(proto, file.package);
  for (const field of file.extension) resolveField(field, file.package, `extension ${field.name}`);
  for (const service of file.service) {
    const name = `${file.package === "" ? "" : `${file.package}.`}${service.name}`;
    for (const method of service.method) {
      const input = use(method.inputType, name, `method ${name}.${method.name} (input)`, "message");
      if (input !== undefined) method.inputType = input;
      const output = use(method.outputType, name, `method ${name}.${method.name} (output)`, "message");
      if (output !== undefined) method.outputType = output;
    }
  }
  dependencies.delete(file.name);
  file.dependency = [...dependencies];
  const [first, ...more] = problems;
  if (first === undefined) return undefined;
  return (
    `${first.what}: ${first.error}` +
    (more.length === 0 ? "" : ` (and ${more.length} more: ${more.map((p) => p.what).join(", ")})`) +
    (ambiguous ? " (protobufjs shortens names so; give the reflection server protoc- or buf-built descriptors)" : "")
  );
}

function forEachMessage(file: FileDescriptorProto, each: (proto: DescriptorProto, name: string) => void): void {
  const visit = (proto: DescriptorProto, scope: string) => {
    const name = scope === "" ? proto.name : `${scope}.${proto.name}`;
    each(proto, name);
    for (const nested of proto.nestedType) visit(nested, name);
  };
  for (const proto of file.messageType) visit(proto, file.package);
}

/**
 * protobufjs names a map's entry type after the field (`Headers`); protoc
 * names it `HeadersEntry`, and so a message may also declare a `Headers` of
 * its own. The entry is the map_entry nested type named like the field; its
 * map field gets the entry's absolute name at once, so that a user type of
 * the old name cannot capture it.
 */
function renameMapEntries(proto: DescriptorProto, messageName: string): void {
  const taken = new Set([...proto.nestedType.map((t) => t.name), ...proto.enumType.map((t) => t.name)]);
  for (const entry of proto.nestedType) {
    if (entry.options?.mapEntry !== true || entry.name.endsWith("Entry")) continue;
    const field = proto.field.find(
      (f) => f.label === FieldDescriptorProto_Label.REPEATED && f.type === FieldDescriptorProto_Type.MESSAGE && f.typeName === entry.name && ucFirst(f.name) === entry.name,
    );
    if (field === undefined) continue;
    const name = mapEntryName(field.name);
    if (taken.has(name)) continue;
    taken.add(name);
    entry.name = name;
    field.typeName = `.${messageName}.${name}`;
  }
}

function ucFirst(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}

/**
 * A proto3 field alone in a oneof named `_` + its name is what protoc makes
 * of `optional`: protobufjs keeps the oneof and drops the flag. With the flag
 * protobuf-es treats it as a plain field with presence, as protoc-built
 * descriptors do (JSON is the same either way).
 */
function restoreProto3Optional(proto: DescriptorProto, file: FileDescriptorProto): void {
  if (file.syntax !== "proto3") return;
  proto.oneofDecl.forEach((oneof, index) => {
    // oneof_index is proto2 optional: 0 when unset, so ask whether it is set.
    const members = proto.field.filter((f) => isFieldSet(f, FieldDescriptorProtoSchema.field.oneofIndex) && f.oneofIndex === index);
    const only = members[0];
    if (members.length === 1 && only!.label !== FieldDescriptorProto_Label.REPEATED && oneof.name === `_${only!.name}`) only!.proto3Optional = true;
  });
}
