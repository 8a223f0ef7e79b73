/**
 * A loopback OTLP/HTTP traces receiver: takes `POST /v1/traces` with
 * `application/x-protobuf` bodies and decodes each ExportTraceServiceRequest
 * with the OTLP protobuf schema (the fields the tests read, with the field
 * numbers of opentelemetry-proto's collector/trace/v1, trace/v1, common/v1
 * and resource/v1; unknown fields are skipped by the decoder).
 */
import { createServer, type IncomingMessage } from "node:http";
import { EventEmitter, once } from "node:events";
import type { AddressInfo } from "node:net";
import protobuf from "protobufjs";

const otlpSchema = `
syntax = "proto3";
package otlp;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  repeated Event events = 11;
  Status status = 15;
}
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
  }
}
`;

const requestType = protobuf.parse(otlpSchema, { keepCase: false }).root.lookupType("otlp.ExportTraceServiceRequest");

/** A span as received, ids in hex, attributes as plain values. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean>;
  statusCode: number;
  scope: string;
  resource: Record<string, string | number | boolean>;
}

interface DecodedKeyValue {
  key: string;
  value?: { stringValue?: string; boolValue?: boolean; intValue?: number | { toNumber(): number }; doubleValue?: number };
}

function attributes(list: DecodedKeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) {
    if (value === undefined) continue;
    const int = value.intValue;
    out[key] = value.stringValue ?? value.boolValue ?? (typeof int === "object" ? int.toNumber() : int) ?? value.doubleValue ?? "";
  }
  return out;
}

const hex = (bytes: Uint8Array | undefined) => Buffer.from(bytes ?? []).toString("hex");

export interface OtlpReceiver {
  /** e.g. http://127.0.0.1:PORT/v1/traces */
  url: string;
  spans: ReceivedSpan[];
  /** Content types and paths of the exports received. */
  requests: { path: string | undefined; contentType: string | undefined }[];
  /** Resolves once a span named `name` has arrived. */
  span(name: string): Promise<ReceivedSpan>;
  close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: OtlpReceiver["requests"] = [];
  const arrivals = new EventEmitter();
  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    requests.push({ path: req.url, contentType: req.headers["content-type"] });
    const decoded = requestType.toObject(requestType.decode(Buffer.concat(chunks)), { longs: Number, defaults: true }) as {
      resourceSpans: { resource?: { attributes: DecodedKeyValue[] }; scopeSpans: { scope?: { name: string }; spans: Record<string, never>[] }[] }[];
    };
    for (const resourceSpans of decoded.resourceSpans) {
      const resource = attributes(resourceSpans.resource?.attributes);
      for (const scopeSpans of resourceSpans.scopeSpans) {
        for (const span of scopeSpans.spans as unknown as {
          traceId: Uint8Array;
          spanId: Uint8Array;
          parentSpanId: Uint8Array;
          name: string;
          kind: number;
          attributes: DecodedKeyValue[];
          status?: { code: number };
        }[]) {
          spans.push({
            traceId: hex(span.traceId),
            spanId: hex(span.spanId),
            parentSpanId: hex(span.parentSpanId),
            name: span.name,
            kind: span.kind,
            attributes: attributes(span.attributes),
            statusCode: span.status?.code ?? 0,
            scope: scopeSpans.scope?.name ?? "",
            resource,
          });
        }
      }
    }
    // An empty ExportTraceServiceResponse: full success.
    res.writeHead(200, { "content-type": "application/x-protobuf", "content-length": 0 });
    res.end();
    arrivals.emit("spans");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    requests,
    span: async (name) => {
      for (;;) {
        const found = spans.find((span) => span.name === name);
        if (found !== undefined) return found;
        await once(arrivals, "spans");
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
