/**
 * Serving the OpenAPI document: as a route description the admin port
 * mounts (`openApiRoute`), or as a GET route on the data port beside the
 * calls (`mountOpenApi`, used by the plugin with `openapi.on: "data"`).
 * Both describe the bindings the REST routes were built from, once, at
 * start (routes do not change while the bridge runs).
 */
import type { FastifyInstance } from "fastify";
import type { Registry } from "@bufbuild/protobuf";
import type { OpenApiConfig } from "../config/schema.js";
import { listHttpBindings, type HttpBinding } from "../rest/bindings.js";
import { matchTemplate } from "../rest/path-template.js";
import { documentOf } from "./document.js";

/** What the admin port serves for the document: a GET route with a fixed answer. */
export interface OpenApiRoute {
  path: string;
  contentType: string;
  body: string;
}

export const openApiContentType = "application/json; charset=utf-8";

/**
 * The document as a route: built once, here, so a bad annotation or a
 * clash with a REST route fails at start rather than on the first GET.
 * `schema`: the REST routes' bindings, or the types to list them from.
 * `servers`: the URLs the REST routes are under (on the admin port the
 * document is not where they are served).
 */
export function openApiRoute(schema: Registry | readonly HttpBinding[], options: OpenApiConfig, servers?: string[]): OpenApiRoute {
  const bindings = Array.isArray(schema) ? (schema as readonly HttpBinding[]) : listHttpBindings(schema as Registry);
  checkNotShadowing(options.path, bindings);
  const document = documentOf(bindings, { title: options.title, version: options.version, ...(servers === undefined ? {} : { servers }) });
  return { path: options.path, contentType: openApiContentType, body: JSON.stringify(document) };
}

/** Throws when a GET binding's template takes the document's path: one of them would be unreachable. */
function checkNotShadowing(path: string, bindings: readonly HttpBinding[]): void {
  for (const binding of bindings) {
    if ((binding.verb === "GET" || binding.verb === "*") && matchTemplate(binding.template, path) !== undefined) {
      throw new Error(
        `connect-grpc-bridge: openapi.path "${path}" is taken by the REST binding ${binding.name} (${binding.verb} "${binding.template.source}"): choose another path`,
      );
    }
  }
}

/**
 * A GET route for the document inside the plugin's context: under its
 * prefix (the document's server, as the REST routes are there too), behind
 * the host's hooks and the plugin's CORS policy. Fastify matches the
 * static route before the plugin's catch-all.
 */
export function mountOpenApi(fastify: FastifyInstance, options: OpenApiConfig, bindings: readonly HttpBinding[]): void {
  const route = openApiRoute(bindings, options, fastify.prefix === "" ? undefined : [fastify.prefix]);
  fastify.get(route.path, (_request, reply) => reply.type(route.contentType).send(route.body));
}
