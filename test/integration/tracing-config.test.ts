/**
 * Where `tracing` and `accessLog` come from: config file keys, flags and
 * environment variables (one schema, defaults there), plugin options
 * validated the same way, and what each resolves to.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConfig } from "../../src/config/load.js";
import { resolveOptions } from "../../src/options.js";

describe("tracing and access log settings", () => {
  it("--otlp-url turns tracing on with the schema's defaults; --trace-sample-ratio and the env take decimals", () => {
    const { config } = loadConfig({ upstream: "127.0.0.1:1", "otlp-url": "http://127.0.0.1:4318/v1/traces", "trace-sample-ratio": "0.25" }, {});
    assert.deepEqual(config.tracing, {
      enabled: true,
      serviceName: "connect-grpc-bridge",
      sampleRatio: 0.25,
      exporter: { otlp: { url: "http://127.0.0.1:4318/v1/traces", headers: {} } },
    });
    const fromEnv = loadConfig({ upstream: "127.0.0.1:1" }, { CONNECT_GRPC_BRIDGE_TRACING: "true", CONNECT_GRPC_BRIDGE_ACCESS_LOG_SUCCESS_SAMPLE_RATIO: ".1" }).config;
    assert.deepEqual(fromEnv.tracing, { enabled: true, serviceName: "connect-grpc-bridge", sampleRatio: 1 });
    assert.deepEqual(fromEnv.accessLog, { enabled: true, successSampleRatio: 0.1 });
  });

  it("no tracing unless asked; the access log is on in the CLI unless --access-log false", () => {
    const { config } = loadConfig({ upstream: "127.0.0.1:1" }, {});
    assert.equal(config.tracing, undefined);
    assert.deepEqual(config.accessLog, { enabled: true, successSampleRatio: 1 });
    assert.deepEqual(loadConfig({ upstream: "127.0.0.1:1", "access-log": "false" }, {}).config.accessLog, { enabled: false, successSampleRatio: 1 });
  });

  it("a bad ratio or URL names the flag or variable that set it", () => {
    assert.throws(() => loadConfig({ upstream: "127.0.0.1:1", "trace-sample-ratio": "2" }, {}), /tracing\.sampleRatio: .*\(set by --trace-sample-ratio\)/);
    assert.throws(
      () => loadConfig({ upstream: "127.0.0.1:1" }, { CONNECT_GRPC_BRIDGE_OTLP_URL: "collector:4318" }),
      /tracing\.exporter\.otlp\.url: .*\(set by CONNECT_GRPC_BRIDGE_OTLP_URL\)/,
    );
    assert.throws(() => loadConfig({ upstream: "127.0.0.1:1", "access-log-success-sample-ratio": "half" }, {}), /accessLog\.successSampleRatio: got "half"/);
  });

  it("plugin options: the same schema; enabled: false resolves to off; unknown keys are refused", () => {
    const on = resolveOptions({ upstream: "127.0.0.1:1", tracing: { exporter: { otlp: { url: "https://otel.example.com/v1/traces", headers: { authorization: "Bearer x" } } } }, accessLog: { successSampleRatio: 0.5 } });
    assert.deepEqual(on.tracing, {
      enabled: true,
      serviceName: "connect-grpc-bridge",
      sampleRatio: 1,
      exporter: { otlp: { url: "https://otel.example.com/v1/traces", headers: { authorization: "Bearer x" } } },
    });
    assert.deepEqual(on.accessLog, { enabled: true, successSampleRatio: 0.5 });
    const off = resolveOptions({ upstream: "127.0.0.1:1", tracing: { enabled: false }, accessLog: { enabled: false } });
    assert.equal(off.tracing, undefined);
    assert.equal(off.accessLog, undefined);
    assert.throws(() => resolveOptions({ upstream: "127.0.0.1:1", tracing: { exporter: { zipkin: {} } } as never }), TypeError);
  });
});
