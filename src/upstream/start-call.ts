/**
 * The bottom of the call pipeline: the StartCall that sends calls to an
 * upstream, as a RetryingCall over attempts. Everything above it is a
 * CallLayer; nothing above it knows about streams or endpoints.
 */
import type { StartCall } from "../call.js";
import type { CallTarget } from "./upstream.js";
import type { AttemptLimits } from "./attempt.js";
import { RetryingCall } from "./retrying.js";

/**
 * Calls that go to `target`, with the response size limit.
 *
 * @example
 * const startCall = upstreamStartCall(cluster, { maxResponseMessageBytes: 4 << 20 });
 */
export function upstreamStartCall(target: CallTarget, limits: AttemptLimits): StartCall {
  return (head, sink) => new RetryingCall(target, head, sink, limits);
}
