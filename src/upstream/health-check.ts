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
import type { StartCall } from "../call.js";
import type { HealthCheckOptions } from "./cluster-options.js";
import type { Endpoint } from "./endpoint.js";
import type { AttemptLimits } from "./attempt.js";
import { ownUnary } from "./own-call.js";
import { upstreamStartCall } from "./start-call.js";

const checkPath = "/grpc.health.v1.Health/Check";

/** Encodes a Check request, decodes its response: what a check needs of protobuf-es. */
interface HealthCodec {
  request(service: string): Uint8Array;
  /** Undefined when SERVING, else the status's name. */
  problem(response: Uint8Array): string | undefined;
}

let codec: Promise<HealthCodec> | undefined;

/**
 * protobuf-es and the generated health messages, imported at the first
 * check: a bridge whose clusters are not health-checked never loads them
 * (each module loaded is heap every full GC marks again, issue 15).
 */
function healthCodec(): Promise<HealthCodec> {
  return (codec ??= Promise.all([import("@bufbuild/protobuf"), import("../../gen/grpc/health/v1/health_pb.js")]).then(
    ([{ create, fromBinary, toBinary }, { HealthCheckRequestSchema, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus: ServingStatus }]) => ({
      request: (service) => toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service })),
      problem: (response) => {
        const answer = fromBinary(HealthCheckResponseSchema, response);
        return answer.status === ServingStatus.SERVING ? undefined : ServingStatus[answer.status] ?? `status ${answer.status}`;
      },
    }),
  ));
}

export class HealthChecker {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private successes = 0;
  private failures = 0;
  private request: Uint8Array | undefined;
  private readonly startCall: StartCall;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly options: HealthCheckOptions,
    clusterName: string,
    authority: string,
    limits: AttemptLimits,
  ) {
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
    let health: HealthCodec;
    let response: Uint8Array;
    try {
      health = await healthCodec();
      this.request ??= health.request(this.options.service);
      response = await ownUnary(this.startCall, checkPath, this.request, this.options.timeoutMs);
    } catch (error) {
      return (error as Error).message;
    }
    try {
      return health.problem(response);
    } catch (error) {
      return `undecodable response: ${(error as Error).message}`;
    }
  }
}
