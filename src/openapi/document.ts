/**
 * The OpenAPI 3.1 document of a schema's REST bindings (google.api.http):
 * one operation per binding (additional_bindings included), with path and
 * query parameters, request and response bodies as JSON Schemas of the
 * messages' proto3 JSON, and `google.rpc.Status` for errors. Built from
 * the same bindings the REST transcoder serves (src/rest/bindings.ts).
 */
import type { DescField, DescMessage, DescMethod, DescService, Registry } from "@bufbuild/protobuf";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { listHttpBindings, resolveFieldPath, type HttpBinding } from "../rest/bindings.js";
import type { ParsedTemplate, TemplateVariable } from "../rest/path-template.js";
import { descriptionOf, summaryOf } from "./comments.js";
import { SchemaComponents, hasSpecialJson, refTo, type JsonSchema } from "./json-schema.js";

/** What the document says about itself. */
export interface OpenApiInfo {
  /** info.title */
  title: string;
  /** info.version: the API's version, not the bridge's. */
  version: string;
  /** servers[].url, e.g. the plugin's prefix or a public URL; none: relative to where the document is served. */
  servers?: string[];
}

/** An OpenAPI 3.1 document as plain JSON. */
export type OpenApiDocument = { openapi: "3.1.0"; [key: string]: unknown };

/** The content type of server-streaming REST responses (src/inbound/rest.ts): one JSON object per line. */
export const streamContentType = "application/x-ndjson";

const httpBodyType = "google.api.HttpBody";
const statusName = "google.rpc.Status";

/** Verbs an OpenAPI path item has a field for. */
const operationKeys = new Set(["GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"]);

/**
 * The document of every HTTP binding in `registry`. Throws the bindings'
 * own HttpBindingError on an annotation the transcoder could not serve
 * either. Bindings OpenAPI cannot express (a custom verb such as `*`) are
 * listed under `x-unlisted-bindings` instead of being dropped silently.
 */
export function openApiDocument(registry: Registry, info: OpenApiInfo): OpenApiDocument {
  return documentOf(listHttpBindings(registry), info);
}

/** The document of `bindings` (see {@link openApiDocument}). */
export function documentOf(bindings: readonly HttpBinding[], info: OpenApiInfo): OpenApiDocument {
  const components = new SchemaComponents();
  const paths: Record<string, Record<string, unknown>> = {};
  const tags = new Map<string, DescService>();
  const operationIds = new Set<string>();
  const unlisted: string[] = [];
  const bindingIndex = new Map<DescMethod, number>();
  const namesByKey = new Map<string, string[]>();
  for (const binding of bindings) {
    const index = bindingIndex.get(binding.method) ?? 0;
    bindingIndex.set(binding.method, index + 1);
    const kind = binding.method.methodKind;
    if (kind === "client_streaming" || kind === "bidi_streaming") {
      unlisted.push(`${binding.name}: ${binding.verb} ${binding.template.source} (a ${kind.replace("_", "-")} method: REST serves unary and server-streaming methods only)`);
      continue;
    }
    if (!operationKeys.has(binding.verb)) {
      unlisted.push(`${binding.name}: ${binding.verb} ${binding.template.source} (OpenAPI has no operation for this verb)`);
      continue;
    }
    const shape = pathShape(binding.template);
    // OpenAPI holds paths that differ only in parameter names to be the
    // same path: the first binding of a shape names its parameters.
    const names = namesByKey.get(shape.key) ?? shape.placeholders.map((p) => p.proposed);
    namesByKey.set(shape.key, names);
    const text = pathText(shape, names);
    const item = (paths[text] ??= {});
    const key = binding.verb.toLowerCase();
    if (item[key] !== undefined) {
      // Same shape and verb: the transcoder reports the conflict; the first one wins there too.
      unlisted.push(`${binding.name}: ${binding.verb} ${binding.template.source} (same OpenAPI path and verb as an earlier binding: ${text})`);
      continue;
    }
    const service = binding.method.parent;
    tags.set(service.typeName, service);
    item[key] = operation(binding, shape, names, index, components, operationIds);
  }
  components.schemas[statusName] = statusSchema(components);
  const document: OpenApiDocument = {
    openapi: "3.1.0",
    info: { title: info.title, version: info.version },
  };
  if (info.servers !== undefined && info.servers.length > 0) document.servers = info.servers.map((url) => ({ url }));
  document.tags = [...tags.values()].map((service) => {
    const tag: Record<string, unknown> = { name: service.typeName };
    const description = descriptionOf(service);
    if (description !== undefined) tag.description = description;
    return tag;
  });
  document.paths = paths;
  document.components = { schemas: components.schemas };
  if (unlisted.length > 0) document["x-unlisted-bindings"] = unlisted;
  return document;
}

/**
 * A template as OpenAPI path pieces. A variable's literal segments stay in
 * the path and each of its wildcards becomes a parameter of one segment:
 * `{name=shelves/*}` is `shelves/{name}`, so generated clients
 * percent-encode one segment at a time and send the `/` the template
 * needs (a single `{name}` would get its `/` encoded as `%2F`, which
 * http.proto keeps in the value, and match nothing). Wildcards outside a
 * variable match without binding a field; OpenAPI paths have no
 * wildcards, so each becomes a parameter of its own.
 */
interface PathShape {
  /** Literal text, or the index of a placeholder. */
  pieces: (string | number)[];
  placeholders: Placeholder[];
  /** The path with placeholders erased: templates with the same key must share one OpenAPI path (and its parameter names). */
  key: string;
  verb: string | undefined;
}

interface Placeholder {
  proposed: string;
  /** The variable it is (a part of); undefined for a wildcard outside any. */
  variable: TemplateVariable | undefined;
  /** `**`: any number of segments. */
  multi: boolean;
  /** The variable is this one wildcard and nothing else (`{name}`, `{name=*}`): the value is the field's whole value. */
  whole: boolean;
}

export function pathShape(template: ParsedTemplate): PathShape {
  const pieces: (string | number)[] = [];
  const placeholders: Placeholder[] = [];
  const taken = new Set<string>();
  const unique = (name: string) => {
    let candidate = name;
    for (let n = 2; taken.has(candidate); n++) candidate = `${name}_${n}`;
    taken.add(candidate);
    return candidate;
  };
  let anonymous = 0;
  for (let i = 0; i < template.segments.length; i++) {
    const segment = template.segments[i]!;
    const variable = template.variables.find((v) => v.start <= i && i < v.end);
    if (segment.kind === "literal") {
      pieces.push(encodeURIComponent(segment.value));
      continue;
    }
    let proposed: string;
    if (variable === undefined) {
      proposed = `_wildcard${++anonymous}`;
    } else {
      const wildcards = template.segments.slice(variable.start, variable.end).filter((s) => s.kind !== "literal").length;
      const lastWildcard = !template.segments.slice(i + 1, variable.end).some((s) => s.kind !== "literal");
      const before = i > variable.start ? template.segments[i - 1]! : undefined;
      proposed = wildcards === 1 || lastWildcard ? variable.fieldPath : before?.kind === "literal" ? before.value : `${variable.fieldPath}_part`;
    }
    pieces.push(placeholders.length);
    placeholders.push({
      proposed: unique(proposed),
      variable,
      multi: segment.kind === "multi",
      whole: variable !== undefined && variable.end - variable.start === 1,
    });
  }
  const key = "/" + pieces.map((p) => (typeof p === "string" ? p : "{}")).join("/") + (template.verb === undefined ? "" : `:${template.verb}`);
  return { pieces, placeholders, key, verb: template.verb };
}

function pathText(shape: PathShape, names: readonly string[]): string {
  return "/" + shape.pieces.map((p) => (typeof p === "string" ? p : `{${names[p]}}`)).join("/") + (shape.verb === undefined ? "" : `:${shape.verb}`);
}

/** How a variable's value is spelled in the path: `shelves/{shelves}/books/{name}`. */
function variableForm(template: ParsedTemplate, names: readonly string[], variable: TemplateVariable): string {
  const parts: string[] = [];
  let placeholder = 0;
  for (let i = 0; i < template.segments.length; i++) {
    const segment = template.segments[i]!;
    const index = segment.kind === "literal" ? -1 : placeholder++;
    if (i < variable.start || i >= variable.end) continue;
    parts.push(segment.kind === "literal" ? segment.value : `{${names[index]}}`);
  }
  return parts.join("/");
}

function operation(
  binding: HttpBinding,
  shape: PathShape,
  names: readonly string[],
  index: number,
  components: SchemaComponents,
  operationIds: Set<string>,
): Record<string, unknown> {
  const method = binding.method;
  const service = method.parent;
  let id = `${service.name}_${method.name}${index === 0 ? "" : `_${index}`}`;
  // Short service names can repeat across packages; the full name cannot.
  if (operationIds.has(id)) id = `${service.typeName.replace(/\./g, "_")}_${method.name}${index === 0 ? "" : `_${index}`}`;
  operationIds.add(id);
  const op: Record<string, unknown> = { operationId: id, tags: [service.typeName] };
  const comment = descriptionOf(method);
  if (comment !== undefined) {
    op.summary = summaryOf(comment);
    op.description = comment;
  }
  if (method.deprecated) op.deprecated = true;

  const parameters: Record<string, unknown>[] = [];
  const pathFields = new Set<DescField>();
  shape.placeholders.forEach((placeholder, i) => parameters.push(pathParameter(binding, names, placeholder, names[i]!, components, pathFields)));
  // A variable of literals only (`{kind=books}`) sets its field without a placeholder.
  for (const variable of binding.template.variables) {
    const field = resolveFieldPath(method.input, variable.fieldPath);
    if (typeof field !== "string") pathFields.add(field);
  }
  if (binding.body !== "*") {
    const bodyField = binding.body === undefined ? undefined : method.input.fields.find((f) => f.name === binding.body);
    queryParameters(method.input, "", pathFields, bodyField, components, new Set([method.input.typeName]), parameters);
  }
  if (parameters.length > 0) op.parameters = parameters;
  if (binding.body !== undefined) op.requestBody = { required: true, content: requestContent(binding, pathFields, components) };
  const streaming = method.methodKind === "server_streaming";
  op.responses = {
    "200": {
      description: streaming
        ? 'One JSON object per line: {"result": message} for each message; an error after the first message ends the stream with a line {"error": google.rpc.Status} (before it, the error is the HTTP response).'
        : "OK",
      content: responseContent(binding, components),
    },
    default: { description: "An error: the google.rpc.Status of the call, with the HTTP status of its code.", content: { "application/json": { schema: refTo(statusName) } } },
  };
  return op;
}

function pathParameter(
  binding: HttpBinding,
  names: readonly string[],
  placeholder: Placeholder,
  name: string,
  components: SchemaComponents,
  pathFields: Set<DescField>,
): Record<string, unknown> {
  const notes: string[] = [];
  let schema: JsonSchema = { type: "string" };
  const variable = placeholder.variable;
  if (variable === undefined) {
    notes.push(placeholder.multi ? "Any number of segments (`**`); not bound to a field." : "Any one segment (`*`); not bound to a field.");
  } else {
    const field = resolveFieldPath(binding.method.input, variable.fieldPath);
    if (typeof field !== "string") {
      pathFields.add(field);
      if (placeholder.whole && !placeholder.multi) schema = { ...components.field(field) };
      const comment = descriptionOf(field);
      if (comment !== undefined) notes.push(comment);
    }
    if (!placeholder.whole) {
      notes.push(`Part of field \`${variable.fieldPath}\`, whose value is \`${variableForm(binding.template, names, variable)}\`.`);
    } else if (name !== variable.fieldPath) {
      notes.push(`Field \`${variable.fieldPath}\`.`);
    }
  }
  if (placeholder.multi) {
    notes.push("Spans any number of path segments: send its `/` characters as they are, not percent-encoded (`%2F` is no separator: it stays in the value).");
  }
  const parameter: Record<string, unknown> = { name, in: "path", required: true, schema };
  if (notes.length > 0) parameter.description = notes.join("\n\n");
  return parameter;
}

/** Messages that cannot be given as query parameters: their JSON is an object or array of anything. */
const notInQuery = new Set(["google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.Any", "google.protobuf.Empty", httpBodyType]);

/**
 * Query parameters for the fields neither the path nor the body binds:
 * nested message fields flattened with dots (`book.author.name`), repeated
 * scalars as repeated parameters; maps, repeated messages and
 * recursive messages (past their first level) have no query form.
 */
function queryParameters(
  message: DescMessage,
  prefix: string,
  pathFields: Set<DescField>,
  bodyField: DescField | undefined,
  components: SchemaComponents,
  stack: Set<string>,
  out: Record<string, unknown>[],
): void {
  for (const field of message.fields) {
    if (pathFields.has(field) || field === bodyField) continue;
    const name = prefix + field.jsonName;
    const comment = descriptionOf(field);
    const add = (schema: JsonSchema, extra: Record<string, unknown> = {}) => {
      const parameter: Record<string, unknown> = { name, in: "query", schema, ...extra };
      if (comment !== undefined) parameter.description = comment;
      if (field.deprecated) parameter.deprecated = true;
      out.push(parameter);
    };
    switch (field.fieldKind) {
      case "scalar":
      case "enum":
        add(components.field(field));
        break;
      case "list":
        if (field.listKind !== "message") add(components.field(field), { style: "form", explode: true });
        break;
      case "map":
        break;
      case "message": {
        const type = field.message.typeName;
        if (notInQuery.has(type)) break;
        if (hasSpecialJson(field.message)) {
          add(components.field(field));
        } else if (!stack.has(type)) {
          stack.add(type);
          queryParameters(field.message, `${name}.`, pathFields, undefined, components, stack, out);
          stack.delete(type);
        }
        break;
      }
    }
  }
}

const binary = { schema: { type: "string", format: "binary" } };

function isHttpBody(message: DescMessage | undefined): boolean {
  return message?.typeName === httpBodyType;
}

function requestContent(binding: HttpBinding, pathFields: Set<DescField>, components: SchemaComponents): Record<string, unknown> {
  const input = binding.method.input;
  const bodyField = binding.body === "*" ? undefined : input.fields.find((f) => f.name === binding.body);
  if (binding.body === "*" ? isHttpBody(input) : bodyField?.fieldKind === "message" && isHttpBody(bodyField.message)) {
    return { "*/*": binary };
  }
  return { "application/json": { schema: requestBodySchema(binding, pathFields, components) } };
}

/** `body: "*"`: the request message without the fields the path binds; `body: "field"`: that field. */
function requestBodySchema(binding: HttpBinding, pathFields: Set<DescField>, components: SchemaComponents): JsonSchema {
  const input = binding.method.input;
  if (binding.body !== "*") return components.field(input.fields.find((f) => f.name === binding.body)!);
  const ref = components.ref(input);
  const topLevel = input.fields.filter((f) => pathFields.has(f));
  if (topLevel.length === 0 || hasSpecialJson(input)) return ref;
  const full = components.schemas[input.typeName]!;
  const removed = new Set(topLevel.map((f) => f.jsonName));
  const schema: JsonSchema = { ...full };
  schema.properties = Object.fromEntries(Object.entries(full.properties as Record<string, JsonSchema>).filter(([key]) => !removed.has(key)));
  if (Array.isArray(full.required)) {
    const required = (full.required as string[]).filter((key) => !removed.has(key));
    if (required.length > 0) schema.required = required;
    else delete schema.required;
  }
  if (full.dependentSchemas !== undefined) {
    schema.dependentSchemas = Object.fromEntries(Object.entries(full.dependentSchemas as Record<string, JsonSchema>).filter(([key]) => !removed.has(key)));
  }
  const note = `${input.typeName} without ${[...removed].map((n) => `\`${n}\``).join(", ")}, which the path sets.`;
  schema.description = typeof full.description === "string" ? `${note}\n\n${full.description}` : note;
  return schema;
}

function responseContent(binding: HttpBinding, components: SchemaComponents): Record<string, unknown> {
  const output = binding.method.output;
  const field = binding.responseBody === undefined ? undefined : output.fields.find((f) => f.name === binding.responseBody);
  if (field === undefined ? isHttpBody(output) : field.fieldKind === "message" && isHttpBody(field.message)) return { "*/*": binary };
  const schema = field === undefined ? components.ref(output) : components.field(field);
  if (binding.method.methodKind !== "server_streaming") return { "application/json": { schema } };
  // One line of the stream (as grpc-gateway writes them).
  const line = {
    oneOf: [
      { type: "object", properties: { result: schema }, required: ["result"], additionalProperties: false },
      { type: "object", properties: { error: refTo(statusName) }, required: ["error"], additionalProperties: false },
    ],
  };
  return { [streamContentType]: { schema: line } };
}

/** google.rpc.Status in JSON: what every REST error is. */
function statusSchema(components: SchemaComponents): JsonSchema {
  return {
    type: "object",
    properties: {
      code: { type: "integer", format: "int32", description: "The google.rpc.Code of the error (e.g. 5 for NOT_FOUND)." },
      message: { type: "string", description: "A developer-facing error message." },
      details: { type: "array", items: anyRef(components), description: "Error details (google.rpc.ErrorInfo, BadRequest, ...), each with its @type." },
    },
    description: "The error of a call (google.rpc.Status).",
  };
}

function anyRef(components: SchemaComponents): JsonSchema {
  return components.ref(AnySchema);
}
