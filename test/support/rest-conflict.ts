/**
 * Schemas built in memory with the google.api.http rules a test needs (route
 * conflicts, invalid rules), as a registry or as descriptor set bytes.
 */
import { create, createFileRegistry, createRegistry, setExtension, toBinary, type Registry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, MethodOptionsSchema, file_google_protobuf_descriptor, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { http, file_google_api_annotations } from "../../gen/google/api/annotations_pb.js";
import { file_google_api_http, HttpRuleSchema } from "../../gen/google/api/http_pb.js";

type Rules = Record<string, Parameters<typeof create<typeof HttpRuleSchema>>[1]>;

/** `conflict.proto`: service conflict.v1.Svc, one method per rule, all taking and returning conflict.v1.Req {name, repeated tags}. */
function conflictFile(rules: Rules): FileDescriptorProto {
  return create(FileDescriptorProtoSchema, {
    name: "conflict.proto",
    package: "conflict.v1",
    syntax: "proto3",
    dependency: ["google/api/annotations.proto"],
    messageType: [{ name: "Req", field: [{ name: "name", number: 1, type: 9, label: 1, jsonName: "name" }, { name: "tags", number: 2, type: 9, label: 3, jsonName: "tags" }] }],
    service: [
      {
        name: "Svc",
        method: Object.entries(rules).map(([name, rule]) => {
          const options = create(MethodOptionsSchema);
          setExtension(options, http, create(HttpRuleSchema, rule));
          return { name, inputType: ".conflict.v1.Req", outputType: ".conflict.v1.Req", options };
        }),
      },
    ],
  });
}

const deps = [file_google_protobuf_descriptor, file_google_api_http, file_google_api_annotations];

/** A registry of one file `conflict.proto` whose methods carry the given rules. */
/** A registry of `conflict.proto` whose methods carry `rules`. */
export function registryWithRules(rules: Rules): Registry {
  const files = new Map(deps.map((f) => [f.name + ".proto", f]));
  return createRegistry(createFileRegistry(conflictFile(rules), (name) => files.get(name)));
}

/** The same schema as descriptor set bytes (dependencies included), what `schema.descriptorSets` takes. */
export function descriptorSetWithRules(rules: Rules): Uint8Array {
  return toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: [...deps.map((f) => f.proto), conflictFile(rules)] }));
}
