/**
 * The HTTP bindings a schema declares: every method's `google.api.http`
 * rule and its `additional_bindings`, parsed and checked against the
 * request and response messages once, at start; and the route conflicts
 * among them (two bindings that take the same requests, a REST route that
 * shadows an RPC path).
 */
import { getExtension, hasExtension, type DescField, type DescMessage, type DescMethod, type Registry } from "@bufbuild/protobuf";
import { http } from "../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../gen/google/api/http_pb.js";
import { matchTemplate, parseTemplate, type ParsedTemplate } from "./path-template.js";

/** HTTP verbs of the rule's `pattern` oneof; `custom` rules carry any other (`HEAD`, or `*` for every verb). */
export type HttpVerb = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | (string & {});

/** One HTTP binding of one method. */
export interface HttpBinding {
  readonly method: DescMethod;
  /** Upper case; `*` when a custom rule leaves the verb open. */
  readonly verb: HttpVerb;
  readonly template: ParsedTemplate;
  /** `*` (every field the path does not bind), a top-level field name, or undefined (no body). */
  readonly body: string | undefined;
  /** A top-level field of the response whose value is the HTTP body, or undefined (the whole message). */
  readonly responseBody: string | undefined;
  /** `/package.Service/Method`: the call the binding makes. */
  readonly rpcPath: string;
  /** Where the binding was declared, for messages: `pkg.Service.Method` or `pkg.Service.Method additional_bindings[0]`. */
  readonly name: string;
}

/** An annotation that cannot be served; the message names the method and the reason. */
export class HttpBindingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HttpBindingError";
  }
}

/** `/package.Service/Method` of a method. */
export function rpcPathOf(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** Every service in a registry (a registry iterates all its types). */
export function servicesOf(registry: Registry): DescMethod[] {
  const methods: DescMethod[] = [];
  for (const type of registry) if (type.kind === "service") methods.push(...type.methods);
  return methods;
}

/**
 * Every HTTP binding of every method in `registry`, declaration order
 * (service by service, the main rule before its additional bindings).
 * Throws HttpBindingError on a rule that cannot be served: a bad template,
 * a path variable or body naming no field, or naming a field it must not.
 */
export function listHttpBindings(registry: Registry): HttpBinding[] {
  const bindings: HttpBinding[] = [];
  for (const method of servicesOf(registry)) {
    const options = method.proto.options;
    if (options === undefined || !hasExtension(options, http)) continue;
    const rule = getExtension(options, http);
    const name = `${method.parent.typeName}.${method.name}`;
    bindings.push(bindingOf(method, rule, name));
    rule.additionalBindings.forEach((extra, i) => {
      const extraName = `${name} additional_bindings[${i}]`;
      if (extra.additionalBindings.length > 0) {
        throw new HttpBindingError(`${extraName}: additional_bindings must not nest further additional_bindings`);
      }
      bindings.push(bindingOf(method, extra, extraName));
    });
  }
  return bindings;
}

function bindingOf(method: DescMethod, rule: HttpRule, name: string): HttpBinding {
  const pattern = rule.pattern;
  let verb: string;
  let source: string;
  switch (pattern.case) {
    case undefined:
      throw new HttpBindingError(`${name}: the google.api.http rule sets no pattern (get, put, post, delete, patch or custom)`);
    case "custom":
      verb = pattern.value.kind.toUpperCase();
      source = pattern.value.path;
      if (verb === "") throw new HttpBindingError(`${name}: custom pattern without a kind`);
      break;
    default:
      verb = pattern.case.toUpperCase();
      source = pattern.value;
  }
  let template: ParsedTemplate;
  try {
    template = parseTemplate(source);
  } catch (error) {
    throw new HttpBindingError(`${name}: ${(error as Error).message}`);
  }
  for (const variable of template.variables) {
    const field = resolveFieldPath(method.input, variable.fieldPath);
    if (typeof field === "string") throw new HttpBindingError(`${name}: path variable {${variable.fieldPath}}: ${field}`);
    if (field.fieldKind !== "scalar" && field.fieldKind !== "enum" && !isStringWrapper(field)) {
      throw new HttpBindingError(
        `${name}: path variable {${variable.fieldPath}} is a ${field.fieldKind} field; path variables must be non-repeated primitive fields`,
      );
    }
  }
  const body = rule.body === "" ? undefined : rule.body;
  if (body !== undefined && body !== "*") topLevelField(method.input, body, name, "body");
  const responseBody = rule.responseBody === "" ? undefined : rule.responseBody;
  if (responseBody !== undefined) topLevelField(method.output, responseBody, name, "response_body");
  return { method, verb, template, body, responseBody, rpcPath: rpcPathOf(method), name };
}

function isStringWrapper(field: DescField): boolean {
  return field.fieldKind === "message" && field.message.typeName.startsWith("google.protobuf.") && field.message.typeName.endsWith("Value");
}

function topLevelField(message: DescMessage, fieldName: string, name: string, what: string): DescField {
  const field = message.fields.find((f) => f.name === fieldName);
  if (field === undefined) throw new HttpBindingError(`${name}: ${what} "${fieldName}" is not a field of ${message.typeName}`);
  return field;
}

/**
 * The field a dotted path names (`book.name`: field `book`, then its
 * message's `name`), by proto name or JSON name; a string saying what is
 * wrong when it names none, or runs through a repeated or map field.
 */
export function resolveFieldPath(message: DescMessage, fieldPath: string): DescField | string {
  const parts = fieldPath.split(".");
  let current = message;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    const field = current.fields.find((f) => f.name === part) ?? current.fields.find((f) => f.jsonName === part);
    if (field === undefined) return `${current.typeName} has no field "${part}"`;
    if (i === parts.length - 1) return field;
    if (field.fieldKind !== "message") return `"${parts.slice(0, i + 1).join(".")}" is not a message field`;
    current = field.message;
  }
  return `empty field path`;
}

/** Two bindings that take the same requests, or a binding that takes an RPC's own path. */
export interface RouteConflict {
  /** The binding that would win (declared first). */
  readonly first: string;
  /** The binding or RPC path it collides with. */
  readonly second: string;
  /** What both match, for the message. */
  readonly reason: string;
}

/**
 * The conflicts among `bindings`: two bindings whose verbs overlap and
 * whose templates have the same shape (same literals, wildcards in the
 * same places, same verb suffix) match exactly the same requests; and a
 * GET or POST binding whose template matches `/package.Service/Method` of
 * any method in `rpcMethods` would take Connect/gRPC-Web calls (which are
 * POST or Connect GET) away from that RPC.
 */
export function findRouteConflicts(bindings: readonly HttpBinding[], rpcMethods: readonly DescMethod[]): RouteConflict[] {
  const conflicts: RouteConflict[] = [];
  const byShape = new Map<string, HttpBinding[]>();
  for (const binding of bindings) {
    const same = byShape.get(binding.template.shape) ?? [];
    for (const earlier of same) {
      if (earlier.verb === binding.verb || earlier.verb === "*" || binding.verb === "*") {
        conflicts.push({
          first: earlier.name,
          second: binding.name,
          reason: `both bind ${binding.verb === "*" ? earlier.verb : binding.verb} ${binding.template.shape} ("${earlier.template.source}" and "${binding.template.source}")`,
        });
      }
    }
    same.push(binding);
    byShape.set(binding.template.shape, same);
  }
  for (const binding of bindings) {
    if (binding.verb !== "GET" && binding.verb !== "POST" && binding.verb !== "*") continue;
    for (const method of rpcMethods) {
      const path = rpcPathOf(method);
      if (matchTemplate(binding.template, path) !== undefined) {
        conflicts.push({
          first: binding.name,
          second: `RPC ${path}`,
          reason: `${binding.verb} "${binding.template.source}" matches the RPC path ${path}, which Connect and gRPC-Web clients call`,
        });
      }
    }
  }
  return conflicts;
}

/** Throws one HttpBindingError listing every conflict, each with both names. */
export function assertNoRouteConflicts(bindings: readonly HttpBinding[], rpcMethods: readonly DescMethod[]): void {
  const conflicts = findRouteConflicts(bindings, rpcMethods);
  if (conflicts.length === 0) return;
  throw new HttpBindingError(
    `REST route conflict${conflicts.length > 1 ? "s" : ""}: ` + conflicts.map((c) => `${c.first} and ${c.second}: ${c.reason}`).join("; "),
  );
}
