/**
 * `--print-openapi`: the document of a config's schema, without serving
 * anything. Descriptor sets are read; with `schema.reflection` each
 * upstream (the single one, or every cluster) is asked first, through the
 * same cluster and reflection client the bridge uses.
 */
import type { Registry } from "@bufbuild/protobuf";
import { OpenApiSchema, type BridgeConfig, type OpenApiConfig } from "../config/schema.js";
import { validate } from "../config/validate.js";
import type { Deployment } from "../config/deployment.js";
import { defaultClusterOptions } from "../config/deployment.js";
import { completeSchemaSources } from "../config/rules.js";
import { restSchemaTypes } from "../rest/schema-types.js";
import type { Upstream } from "../upstream/upstream.js";
import { createCluster, type ClusterLog } from "../upstream/cluster.js";
import { parseUpstreamTarget } from "../upstream/target.js";
import { documentOf, type OpenApiDocument } from "./document.js";
import { listHttpBindings } from "../rest/bindings.js";

const quiet: ClusterLog = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * The OpenAPI document of `config`'s schema. Throws an Error saying what
 * is missing (no schema) or which upstream's reflection failed and why.
 */
export async function openApiOfConfig(config: BridgeConfig, deployment: Deployment | undefined): Promise<OpenApiDocument> {
  const sources = completeSchemaSources(config.schema);
  if (sources === undefined || (sources.descriptorSets.length === 0 && sources.reflection === false)) {
    throw new Error("--print-openapi needs a schema: --descriptor-set FILE or --reflection");
  }
  const upstreams: Upstream[] = [];
  if (sources.reflection !== false) {
    const single = deployment === undefined ? parseUpstreamTarget(config.upstream!).authority : undefined;
    // Named after the address, as the plugin names a single upstream.
    const clusters = deployment?.clusters ?? [{ ...defaultClusterOptions(single!), name: single! }];
    for (const cluster of clusters) upstreams.push(createCluster(cluster, quiet, { maxResponseMessageBytes: config.maxResponseBytes }));
  }
  let types: Registry;
  try {
    // The types REST routes would be built from, the same way.
    const schema = { ...sources, reflection: sources.reflection === false ? undefined : sources.reflection };
    types = await restSchemaTypes(schema, upstreams, config.maxResponseBytes);
  } finally {
    await Promise.all(upstreams.map((upstream) => upstream.close()));
  }
  // Not served, only printed: the schema's defaults give the info.
  const openapi = config.openapi ?? validate<OpenApiConfig>(OpenApiSchema, {});
  return documentOf(listHttpBindings(types), { title: openapi.title, version: openapi.version });
}
