/**
 * Serving the OpenAPI document: as a route description the admin port
 * mounts (`openApiRoute`), or as a GET route on the data port beside the
 * calls (`mountOpenApi`, used by the plugin with `openapi.on: "data"`).
 */
import type { FastifyInstance } from "fastify";
import { createRegistry, type Registry } from "@bufbuild/protobuf";
import type { OpenApiConfig } from "../config/schema.js";
import { listHttpBindings } from "../rest/bindings.js";
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
 * The document of `types`' HTTP bindings as a route: built once, here, so
 * a bad annotation fails at start rather than on the first GET.
 * `servers`: the URLs the REST routes are under (the admin port is not
 * where they are served).
 */
export function openApiRoute(types: Registry, options: OpenApiConfig, servers?: string[]): OpenApiRoute {
  return { path: options.path, contentType: openApiContentType, body: documentJson(types, options, servers) };
}

function documentJson(types: Registry, options: OpenApiConfig, servers: string[] | undefined): string {
  const bindings = listHttpBindings(types);
  checkNotShadowing(options.path, bindings);
  return JSON.stringify(documentOf(bindings, { title: options.title, version: options.version, ...(servers === undefined ? {} : { servers }) }));
}

/** Throws when a GET binding's template takes the document's path: one of them would be unreachable. */
function checkNotShadowing(path: string, bindings: ReturnType<typeof listHttpBindings>): void {
  for (const binding of bindings) {
    if ((binding.verb === "GET" || binding.verb === "*") && matchTemplate(binding.template, path) !== undefined) {
      throw new Error(`connect-grpc-bridge: openapi.path "${path}" is taken by the REST binding ${binding.name} (${binding.verb} "${binding.template.source}"): choose another path`);
    }
  }
}

/** Where the data-port route gets its types: fixed ones, or the upstreams' reflected schemas per request. */
export type TypesSource = () => Promise<(Registry | undefined)[]>;

/**
 * A GET route for the document inside the plugin's context (so under its
 * prefix, and behind its hooks and CORS). Descriptor sets only: the
 * document is built now and served as it is. With reflection it is built
 * from the upstreams' current schemas, again only when they change.
 */
export async function mountOpenApi(
  fastify: FastifyInstance,
  options: OpenApiConfig,
  fixed: Registry | undefined,
  reflected: TypesSource | undefined,
): Promise<void> {
  // The REST routes are under the plugin's prefix, as the document is.
  const servers = fastify.prefix === "" ? undefined : [fastify.prefix];
  if (reflected === undefined) {
    const body = documentJson(fixed ?? createRegistry(), options, servers);
    fastify.get(options.path, (_request, reply) => reply.type(openApiContentType).send(body));
    return;
  }
  if (fixed !== undefined) documentJson(fixed, options, servers);
  let built: { from: (Registry | undefined)[]; body: string } | undefined;
  fastify.get(options.path, async (_request, reply) => {
    let types: (Registry | undefined)[];
    try {
      types = await reflected();
    } catch (error) {
      return reply
        .code(503)
        .type("application/json")
        .send({ code: 14, message: `OpenAPI document unavailable: the schema could not be read: ${(error as Error).message}`, details: [] });
    }
    if (types.every((t) => t === undefined)) {
      return reply.code(503).type("application/json").send({ code: 14, message: "OpenAPI document unavailable: server reflection has not answered yet", details: [] });
    }
    if (built === undefined || built.from.length !== types.length || built.from.some((t, i) => t !== types[i])) {
      const present = types.filter((t): t is Registry => t !== undefined);
      built = { from: types, body: documentJson(createRegistry(...present), options, servers) };
    }
    return reply.type(openApiContentType).send(built.body);
  });
}
