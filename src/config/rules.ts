/**
 * What the schema cannot state by itself, for the keys of the bridge (the
 * cluster and route rules are in deployment.ts): a rule between two keys of
 * `cors`, and the defaults of `schema`, whose `reflection` is a union (ajv
 * applies no defaults inside one). Shared by the config file and the plugin.
 */
import { ReflectionSchema, SchemaSourcesSchema, type CorsConfig, type Loose, type ReflectionConfig, type SchemaSources } from "./schema.js";
import { show, validate, type Issue } from "./validate.js";

/** Problems between the keys of a validated `cors`; `at` is its own path ("cors", "options.cors"). */
export function corsIssues(cors: CorsConfig | undefined, at: string): Issue[] {
  if (cors === undefined || !cors.credentials || cors.allowedOrigins !== "*") return [];
  // Browsers refuse credentials with "Access-Control-Allow-Origin: *".
  return [{ at: `${at}.allowedOrigins`, kind: "value", got: show("*"), expected: "a list of origins when cors.credentials is true, not \"*\"" }];
}

/** `schema` with every default filled in, `reflection: true` as its timings. */
export interface CompleteSchemaSources extends Omit<SchemaSources, "reflection"> {
  reflection: false | ReflectionConfig;
}

/**
 * Fills in the defaults of a validated `schema` (the caller's objects stay
 * theirs); undefined stays undefined: no schema at all.
 */
export function completeSchemaSources(written: Loose<SchemaSources> | undefined): CompleteSchemaSources | undefined {
  if (written === undefined) return undefined;
  const sources = validate<SchemaSources>(SchemaSourcesSchema, { ...written }, "schema");
  const r = sources.reflection;
  const reflection = r === false ? false : validate<ReflectionConfig>(ReflectionSchema, r === true ? {} : { ...r }, "schema.reflection");
  return { ...sources, reflection };
}
