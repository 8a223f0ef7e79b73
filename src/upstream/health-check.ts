/**
 * Active health checking of one endpoint with the standard
 * grpc.health.v1.Health/Check call, on the endpoint's own connections (so a
 * check also proves that the path calls take works). Consecutive failures
 * (NOT_SERVING, an error status, unreachable, too slow) past the threshold
 * take the endpoint out of rotation; consecutive SERVING answers bring it back.
 */
import * as http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/grpc/health/v1/health_pb.js";
import type { HealthCheckOptions } from "./cluster-options.js";
import type { Endpoint } from "./endpoint.js";
import { encodeEnvelope, envelopeHeaderLength } from "../protocol/envelope.js";
import { grpcStatusError } from "../protocol/error-json.js";
import { toHeaders } from "../protocol/metadata.js";
import { grpcTimeoutHeader } from "../protocol/timeout.js";

const checkPath = "/grpc.health.v1.Health/Check";

export class HealthChecker {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private successes = 0;
  private failures = 0;
  private readonly requestFrame: Buffer;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly options: HealthCheckOptions,
    private readonly authority: string,
  ) {
    this.requestFrame = encodeEnvelope(0, toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: options.service })));
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
      this.failures = 0;
      if (++this.successes >= this.options.healthyThreshold) this.endpoint.setHealthy(true);
    } else {
      this.successes = 0;
      if (++this.failures >= this.options.unhealthyThreshold) this.endpoint.setHealthy(false, `health check: ${problem}`);
    }
    this.timer = setTimeout(() => void this.run(), this.options.intervalMs);
    this.timer.unref();
  }

  /** One Check call: undefined when SERVING, else what was wrong. */
  private check(): Promise<string | undefined> {
    return new Promise((resolve) => {
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.endpoint.request({
          ":method": "POST",
          ":path": checkPath,
          ":authority": this.authority,
          "content-type": "application/grpc",
          te: "trailers",
          "grpc-timeout": grpcTimeoutHeader(this.options.timeoutMs),
        });
      } catch (error) {
        resolve(error instanceof Error ? error.message : String(error));
        return;
      }
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let message: string | undefined;
      const timeout = setTimeout(() => {
        done(`no answer within ${this.options.timeoutMs} ms`);
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }, this.options.timeoutMs);
      timeout.unref();
      let settled = false;
      const done = (problem: string | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        resolve(problem);
      };
      const takeStatus = (headers: http2.IncomingHttpHeaders) => {
        if (headers["grpc-status"] !== undefined) {
          status = String(headers["grpc-status"]);
          message = grpcStatusError(toHeaders(headers))?.rawMessage;
        }
      };
      stream.on("response", takeStatus);
      stream.on("trailers", takeStatus);
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", (error) => done(error.message));
      stream.on("close", () => {
        if (status === undefined) return done(`stream closed without grpc-status (reset code ${stream.rstCode})`);
        if (status !== "0") return done(`grpc-status ${status}${message ? `: ${message}` : ""}`);
        const body = Buffer.concat(chunks);
        if (body.length < envelopeHeaderLength) return done("empty response");
        try {
          const answer = fromBinary(HealthCheckResponseSchema, body.subarray(envelopeHeaderLength));
          done(answer.status === ServingStatus.SERVING ? undefined : ServingStatus[answer.status] ?? `status ${answer.status}`);
        } catch (error) {
          done(`undecodable response: ${(error as Error).message}`);
        }
      });
      stream.end(this.requestFrame);
    });
  }
}
