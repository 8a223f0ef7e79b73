/**
 * Validation against the schema (ajv, defaults applied in place) and error
 * messages a person can act on: the key path, the value found, what was
 * expected.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { Type } from "@sinclair/typebox";
import { BridgeConfigSchema, ClusterSchema, RouteSchema, type TSchema } from "./schema.js";

/** An invalid configuration; `issues` holds one line per problem. */
export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid configuration:\n  ${issues.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

/**
 * Compiled validators, each with an Ajv instance of its own, held weakly:
 * options are checked at start-up (and at a config reload), and a running
 * bridge has no use for the ~1.2 MB a compiled BridgeConfigSchema holds,
 * which would otherwise be live heap that every full GC marks again (issue
 * 15). Bridges created in a row (tests, workers) reuse one until a GC takes it.
 */
const compiled = new Map<TSchema, WeakRef<ValidateFunction>>();

function validator(schema: TSchema): ValidateFunction {
  let fn = compiled.get(schema)?.deref();
  if (fn === undefined) {
    const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true });
    ajv.addKeyword({ keyword: "x-expected" });
    // Descriptor set bytes handed to the plugin: the one value of the schema JSON cannot hold.
    ajv.addKeyword({ keyword: "x-bytes", errors: false, validate: (_: unknown, data: unknown) => data instanceof Uint8Array });
    fn = ajv.compile(schema);
    compiled.set(schema, new WeakRef(fn));
  }
  return fn;
}

export const ClustersSchema = Type.Array(ClusterSchema);
export const RoutesSchema = Type.Array(RouteSchema);

/**
 * One problem with one key: `at` is its path (`clusters[0].lbPolicy`), and
 * either the value was missing, the key is unknown, or `got` is not `expected`.
 */
export type Issue =
  | { at: string; kind: "missing" }
  | { at: string; kind: "unknown"; known: string }
  | { at: string; kind: "value"; got: string; expected: string };

/**
 * Validates `data` against `schema`, filling in defaults in place. Throws a
 * ConfigError naming each bad key as `root.path[0].key`.
 */
export function validate<T>(schema: TSchema, data: unknown, root = ""): T {
  const issues = check(schema, data, root);
  if (issues === undefined) return data as T;
  throw new ConfigError(issues.map(configLine));
}

/** Validates like {@link validate}; answers the issues instead of throwing, undefined when there are none. */
export function check(schema: TSchema, data: unknown, root = ""): Issue[] | undefined {
  const fn = validator(schema);
  return fn(data) ? undefined : describeErrors(fn.errors ?? [], root);
}

/** An issue as a config file's reader wants it: `clusters[0].lbPolicy: got "random"; expected ...`. */
export function configLine(issue: Issue): string {
  switch (issue.kind) {
    case "missing":
      return `${issue.at}: missing; it is required`;
    case "unknown":
      return `${issue.at}: unknown key; expected one of: ${issue.known}`;
    case "value":
      return `${issue.at}: got ${issue.got}; expected ${issue.expected}`;
  }
}

/** An issue as a caller of the plugin wants it: `option "maxRequestBytes" must be ..., got ...`. */
export function optionLine(issue: Issue): string {
  switch (issue.kind) {
    case "missing":
      return `option "${issue.at}" is required`;
    case "unknown":
      return `unknown option "${issue.at}"; expected one of: ${issue.known}`;
    case "value":
      return `option "${issue.at}" must be ${issue.expected}, got ${issue.got}`;
  }
}

export function describeErrors(errors: ErrorObject[], root: string): Issue[] {
  const dropped = new Set<ErrorObject>();
  for (const union of errors) {
    if (union.keyword !== "anyOf") continue;
    // A union reports every branch's complaints and then its own. When the
    // value has the shape of exactly one branch (an object where one branch
    // is an object), that branch's complaints say what is wrong; otherwise
    // the union's own, worded by its x-expected.
    const prefix = union.schemaPath + "/";
    const branches = new Map<string, ErrorObject[]>();
    const here = union.instancePath;
    for (const error of errors) {
      // This union's branches, for this value (a union in a list is one schema path for every item).
      if (!error.schemaPath.startsWith(prefix) || (error.instancePath !== here && !error.instancePath.startsWith(here + "/"))) continue;
      const branch = error.schemaPath.slice(prefix.length).split("/")[0]!;
      branches.set(branch, [...(branches.get(branch) ?? []), error]);
    }
    const fits = [...branches.values()].filter((list) => list.every((e) => e.instancePath !== here || !shapeKeywords.has(e.keyword)));
    for (const list of branches.values()) if (fits.length !== 1 || list !== fits[0]) for (const error of list) dropped.add(error);
    if (fits.length === 1) dropped.add(union);
  }
  const issues = new Map<string, Issue>();
  for (const error of errors) {
    if (dropped.has(error)) continue;
    const issue = describe(error, root);
    issues.set(configLine(issue), issue);
  }
  return [...issues.values()];
}

/** Complaints about the shape of a value itself: a union branch that makes them was not the one meant. */
const shapeKeywords = new Set(["type", "const", "enum", "x-bytes"]);

/** `/clusters/0/lbPolicy` -> `clusters[0].lbPolicy` (JSON pointer unescaped). */
export function keyPath(pointer: string, root: string): string {
  let out = root;
  for (const raw of pointer.split("/").slice(1)) {
    const part = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    out += /^\d+$/.test(part) ? `[${part}]` : out === "" ? part : `.${part}`;
  }
  return out === "" ? "(top level)" : out;
}

export function show(value: unknown): string {
  const text = value === undefined ? "nothing" : value instanceof Uint8Array ? `${value.byteLength} bytes` : JSON.stringify(value);
  return text.length > 80 ? text.slice(0, 77) + "..." : text;
}

function describe(error: ErrorObject, root: string): Issue {
  const at = keyPath(error.instancePath, root);
  const parent = (error.parentSchema ?? {}) as Record<string, unknown>;
  const p = error.params as Record<string, unknown>;
  const value = (expected: string): Issue => ({ at, kind: "value", got: show(error.data), expected });
  switch (error.keyword) {
    case "required":
      return { at: join(at, String(p.missingProperty)), kind: "missing" };
    case "additionalProperties":
      return { at: join(at, String(p.additionalProperty)), kind: "unknown", known: Object.keys((parent.properties as object | undefined) ?? {}).join(", ") };
    case "anyOf":
      return value(String(parent["x-expected"] ?? "one of the allowed forms"));
    case "type":
      return value(article(String(p.type)));
    case "const":
    case "enum":
      return value(show(p.allowedValue ?? p.allowedValues));
    case "pattern":
      return value(String(parent.description ?? `a string matching /${String(p.pattern)}/`));
    case "minimum":
    case "maximum":
      // The common case in words; the limit itself otherwise.
      if (parent.type === "integer" && p.comparison === ">=" && p.limit === 1) return value("a positive integer");
      return value(`a number ${String(p.comparison)} ${String(p.limit)}`);
    case "minItems":
      return value(`a list of at least ${String(p.limit)} item(s)`);
    case "minLength":
      return value("a non-empty string");
    default:
      return value(error.message ?? "valid");
  }
}

function join(at: string, key: string): string {
  return at === "(top level)" ? key : `${at}.${key}`;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

export { BridgeConfigSchema };
