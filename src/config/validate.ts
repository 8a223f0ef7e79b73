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

const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true });
ajv.addKeyword({ keyword: "x-expected" });

const compiled = new Map<TSchema, ValidateFunction>();

function validator(schema: TSchema): ValidateFunction {
  let fn = compiled.get(schema);
  if (fn === undefined) {
    fn = ajv.compile(schema);
    compiled.set(schema, fn);
  }
  return fn;
}

export const ClustersSchema = Type.Array(ClusterSchema);
export const RoutesSchema = Type.Array(RouteSchema);

/**
 * Validates `data` against `schema`, filling in defaults in place. Throws a
 * ConfigError naming each bad key as `root.path[0].key`.
 */
export function validate<T>(schema: TSchema, data: unknown, root = ""): T {
  const fn = validator(schema);
  if (fn(data)) return data as T;
  throw new ConfigError(describeErrors(fn.errors ?? [], root));
}

export function describeErrors(errors: ErrorObject[], root: string): string[] {
  // A union reports every branch's complaint and then its own; keep the
  // union's (worded by its x-expected), drop the branches'.
  const unions = errors.filter((e) => e.keyword === "anyOf").map((e) => e.schemaPath + "/");
  const lines = new Set<string>();
  for (const error of errors) {
    if (unions.some((u) => error.schemaPath.startsWith(u))) continue;
    lines.add(describe(error, root));
  }
  return [...lines];
}

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
  const text = value === undefined ? "nothing" : JSON.stringify(value);
  return text.length > 80 ? text.slice(0, 77) + "..." : text;
}

function describe(error: ErrorObject, root: string): string {
  const at = keyPath(error.instancePath, root);
  const parent = (error.parentSchema ?? {}) as Record<string, unknown>;
  const got = `got ${show(error.data)}`;
  const p = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "required":
      return `${join(at, String(p.missingProperty))}: missing; it is required`;
    case "additionalProperties": {
      const known = Object.keys((parent.properties as object | undefined) ?? {}).join(", ");
      return `${join(at, String(p.additionalProperty))}: unknown key; expected one of: ${known}`;
    }
    case "anyOf":
      return `${at}: ${got}; expected ${String(parent["x-expected"] ?? "one of the allowed forms")}`;
    case "type":
      return `${at}: ${got}; expected ${article(String(p.type))}`;
    case "const":
    case "enum":
      return `${at}: ${got}; expected ${show(p.allowedValue ?? p.allowedValues)}`;
    case "pattern":
      return `${at}: ${got}; expected ${String(parent.description ?? `a string matching /${String(p.pattern)}/`)}`;
    case "minimum":
    case "maximum":
      return `${at}: ${got}; expected a number ${String(p.comparison)} ${String(p.limit)}`;
    case "minItems":
      return `${at}: ${got}; expected at least ${String(p.limit)} item(s)`;
    case "minLength":
      return `${at}: ${got}; expected a non-empty string`;
    default:
      return `${at}: ${got}; ${error.message ?? "invalid"}`;
  }
}

function join(at: string, key: string): string {
  return at === "(top level)" ? key : `${at}.${key}`;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

export { BridgeConfigSchema };
