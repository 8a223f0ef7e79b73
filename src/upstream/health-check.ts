/**
 * Active health checking of one endpoint with the standard
 * grpc.health.v1.Health/Check call, on the endpoint's own connections (so a
 * check also proves that the path calls take works). Consecutive failures
 * (NOT_SERVING, an error status, unreachable, too slow) past the threshold
 * take the endpoint out of rotation; consecutive SERVING answers bring it back.
 * Checks are the bridge's own calls (own-call.ts): one attempt each (never
 * retried elsewhere: the check is about this endpoint), with the deadline and
 * response-size limit of client calls.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/grpc/health/v1/health_pb.js";
import type { StartCall } from "../call.js";
import type { HealthCheckOptions } from "./cluster-options.js";
import type { Endpoint } from "./endpoint.js";
import type { AttemptLimits } from "./attempt.js";
import { ownUnary } from "./own-call.js";
import { upstreamStartCall } from "./start-call.js";

const checkPath = "/grpc.health.v1.Health/Check";

export class HealthChecker {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private successes = 0;
  private failures = 0;
  private readonly request: Uint8Array;
  private readonly startCall: StartCall;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly options: HealthCheckOptions,
    clusterName: string,
    authority: string,
    limits: AttemptLimits,
  ) {
    this.request = toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: options.service }));
    this.startCall = upstreamStartCall({ name: clusterName, authority, request: (headers) => endpoint.request(headers) }, limits);
  }

  /** Checks now, then every `intervalMs` after each check ends. */
  start(): void {
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    const problem = await this.check();
    if (this.stopped) return;
    if (problem === undefined) {
      this.endpoint.healthChecksPassed++;
      this.failures = 0;
      if (++this.successes >= this.options.healthyThreshold) this.endpoint.setHealthy(true);
    } else {
      this.endpoint.healthChecksFailed++;
      this.successes = 0;
      if (++this.failures >= this.options.unhealthyThreshold) this.endpoint.setHealthy(false, `health check: ${problem}`);
    }
    this.timer = setTimeout(() => void this.run(), this.options.intervalMs);
    this.timer.unref();
  }

  /** One Check call: undefined when SERVING, else what was wrong. */
  private async check(): Promise<string | undefined> {
    let response: Uint8Array;
    try {
      response = await ownUnary(this.startCall, checkPath, this.request, this.options.timeoutMs);
    } catch (error) {
      return (error as Error).message;
    }
    try {
      const answer = fromBinary(HealthCheckResponseSchema, response);
      return answer.status === ServingStatus.SERVING ? undefined : ServingStatus[answer.status] ?? `status ${answer.status}`;
    } catch (error) {
      return `undecodable response: ${(error as Error).message}`;
    }
  }
}
