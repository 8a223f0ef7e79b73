/**
 * The schema REST routes are built from, once, when the bridge starts: the
 * descriptor sets, plus (with reflection) one reflection answer from each
 * upstream. Routes must exist before the first request can be classified,
 * so unlike JSON transcoding, REST cannot wait for a lazy reflection fetch;
 * later reflection refreshes do not change the routes (restart to pick up
 * new bindings).
 */
import { createRegistry, type FileRegistry, type Registry } from "@bufbuild/protobuf";
import { loadDescriptorSet } from "../schema/descriptor-set.js";
import { fetchReflectedSchema } from "../schema/reflection-client.js";
import type { ResolvedSchemaOptions } from "../schema/schema.js";
import type { Upstream } from "../upstream/upstream.js";

/**
 * Every type REST can see. Throws an Error naming the upstream when its
 * reflection fails: REST with reflection needs the upstream up at start.
 */
export async function restSchemaTypes(schema: ResolvedSchemaOptions, upstreams: readonly Upstream[], maxResponseBytes: number): Promise<Registry> {
  const registries: FileRegistry[] = schema.descriptorSets.map((source, i) => loadDescriptorSet(source, i));
  if (schema.reflection !== undefined) {
    const { timeoutMs } = schema.reflection;
    const reflected = await Promise.all(
      upstreams.map((upstream) =>
        fetchReflectedSchema(upstream, timeoutMs, maxResponseBytes).catch((error: Error) => {
          throw new Error(
            `connect-grpc-bridge: REST routes need the schema at start, but server reflection of upstream ${upstream.name} failed: ${error.message}`,
          );
        }),
      ),
    );
    registries.push(...reflected);
  }
  return createRegistry(...registries);
}
