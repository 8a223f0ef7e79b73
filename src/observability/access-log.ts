/**
 * The access log: one structured line per request the bridge answered, when
 * it is over (the call ended and the response closed), through the app's
 * pino logger. Successes may be sampled; everything else is always logged.
 */
import type { ServerResponse } from "node:http";
import type { FastifyBaseLogger } from "fastify";
import type { CallEnd, ClientProtocolName } from "../call.js";
import { codeToString } from "../protocol/status.js";

/** What `accessLog` in the config or the plugin options says. */
export interface AccessLogSettings {
  readonly enabled: boolean;
  /** Share of successful calls logged, 0 to 1; errors and refusals are always logged. */
  readonly successSampleRatio: number;
}

/** The message of every access log line, to find them among the app's other lines. */
export const accessLogMessage = "rpc";

/** One request as the access log sees it once it is over. */
export interface AccessRecord {
  readonly res: ServerResponse;
  /** `/package.Service/Method` as requested (without the plugin's prefix). */
  readonly path: string;
  /** The client protocol, undefined when no protocol recognised the request. */
  readonly protocol: ClientProtocolName | undefined;
  /**
   * The client's address, read when the request arrived: HTTP/2's request
   * socket is a proxy of the stream's session, empty once the stream closed.
   */
  readonly client: string | undefined;
  /** performance.now() when the bridge took the request. */
  readonly startedAt: number;
  /** How the call ended (a call's end, or the end a refusal answered); undefined when an adapter refused the request itself. */
  readonly end: CallEnd | undefined;
  /** Enveloped request bytes sent to the upstream. */
  readonly bytesIn: number;
  /** Enveloped response bytes received from the upstream. */
  readonly bytesOut: number;
  /** The trace the call's span belongs to, when tracing is on. */
  readonly traceId: string | undefined;
}

/** Writes access log lines; built once per plugin registration. */
export class AccessLog {
  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly settings: AccessLogSettings,
  ) {}

  /** Logs `record`, unless it is a success the sampling leaves out. */
  write(record: AccessRecord): void {
    const end = record.end;
    const success = end !== undefined && end.error === undefined && record.res.writableEnded;
    const ratio = this.settings.successSampleRatio;
    if (success && ratio < 1 && !(Math.random() < ratio)) return;
    this.log.info(accessLine(record, success), accessLogMessage);
  }
}

/** The fields of one line (pino adds time, level, pid and hostname). */
export function accessLine(record: AccessRecord, success: boolean): Record<string, unknown> {
  const { res, end } = record;
  const slash = record.path.indexOf("/", 1);
  const line: Record<string, unknown> = {
    client: record.client,
    protocol: record.protocol ?? "unknown",
    service: slash > 0 ? record.path.slice(1, slash) : undefined,
    method: slash > 0 ? record.path.slice(slash + 1) : undefined,
    path: slash > 0 ? undefined : record.path,
    // Known when a call or a refusal ended it; an adapter's own refusal
    // (a malformed header, an oversized body) shows its HTTP status only.
    code: end === undefined ? undefined : end.error === undefined ? "ok" : codeToString(end.error.code),
    // 0: no response head was sent (the client left first, or the
    // connection was cut).
    status: res.headersSent ? res.statusCode : 0,
    durationMs: Math.round((performance.now() - record.startedAt) * 1000) / 1000,
    bytesIn: record.bytesIn,
    bytesOut: record.bytesOut,
    endpoint: end?.endpoint,
    retries: end === undefined || end.attempts === 0 ? 0 : end.attempts - 1,
    traceId: record.traceId,
  };
  if (!success) {
    line.error = end?.error?.rawMessage;
    // The call ended well but the client did not get the whole answer.
    if (end !== undefined && end.error === undefined) line.error = "response not completed: the client went away";
  }
  return line;
}
