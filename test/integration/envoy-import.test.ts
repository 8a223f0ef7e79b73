/**
 * `--from-envoy`: the Envoy bootstrap from Connect's gRPC-compatibility guide
 * (ports adapted for the test) converts, lists what it does not apply, and
 * serves calls; a fuller bootstrap maps every supported field and names the
 * unsupported ones by JSON path.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { TestService } from "../../gen/bridge/test/v1/test_pb.js";
import { startGrpcJsServer } from "../support/grpc-js-server.js";
import { runCli } from "../support/cli-process.js";
import { fromEnvoy } from "../../src/config/envoy.js";
import { resolveDeployment } from "../../src/config/deployment.js";

/** The guide's example, with the listener on port 0 and the cluster pointing at the test server. */
function guideBootstrap(upstreamPort: number): string {
  return `admin:
  address:
    socket_address: { address: 0.0.0.0, port_value: 9090 }

static_resources:
  listeners:
    - name: listener_0
      address:
        socket_address: { address: 127.0.0.1, port_value: 0 }
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: ingress_http
                codec_type: AUTO
                route_config:
                  name: local_route
                  virtual_hosts:
                    - name: local_service
                      domains: ["*"]
                      routes:
                        - match: { prefix: "/" }
                          route: { cluster: service_0 }
                http_filters:
                  - name: envoy.filters.http.connect_grpc_bridge
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.connect_grpc_bridge.v3.FilterConfig
                  - name: envoy.filters.http.grpc_web
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: service_0
      connect_timeout: 0.25s
      type: STRICT_DNS
      lb_policy: ROUND_ROBIN
      load_assignment:
        cluster_name: service_0
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address:
                      address: 127.0.0.1
                      port_value: ${upstreamPort}
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          explicit_http_config:
            http2_protocol_options:
              max_concurrent_streams: 100
`;
}

describe("Envoy import (--from-envoy)", () => {
  it("the guide's bootstrap: --print-config shows the equivalent config and lists what is not applied", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bridge-envoy-"));
    try {
      writeFileSync(join(dir, "envoy.yaml"), guideBootstrap(50051));
      const p = runCli(["--from-envoy", join(dir, "envoy.yaml"), "--print-config"]);
      assert.equal(await p.exited, 0, p.err());
      assert.match(p.err(), /warning: not supported, not applied: admin\n/);
      assert.match(p.out(), /# Not supported by the bridge, NOT applied:\n#   admin\n/);
      const config = parseYaml(p.out());
      assert.deepEqual(config.listen, { host: "127.0.0.1", port: 0 });
      assert.deepEqual(config.routes, [{ cluster: "service_0" }]);
      assert.equal(config.clusters.length, 1);
      const [cluster] = config.clusters;
      assert.equal(cluster.name, "service_0");
      assert.deepEqual(cluster.endpoints, ["127.0.0.1:50051"]);
      assert.equal(cluster.connectTimeoutMs, 250);
      assert.equal(cluster.lbPolicy, "round_robin");
      assert.equal(cluster.maxStreamsPerConnection, 100);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the guide's bootstrap serves Connect and gRPC-Web calls through the bridge to a grpc-js server", async () => {
    const upstream = await startGrpcJsServer();
    const dir = mkdtempSync(join(tmpdir(), "bridge-envoy-run-"));
    writeFileSync(join(dir, "envoy.yaml"), guideBootstrap(upstream.port));
    const p = runCli(["--from-envoy", join(dir, "envoy.yaml"), "--log-level", "warn"]);
    try {
      const url = await p.listening();
      for (const transport of [createConnectTransport({ baseUrl: url, httpVersion: "1.1" }), createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" })]) {
        const reply = await createClient(TestService, transport).unary({ text: "via-envoy-config" });
        assert.equal(reply.text, "via-envoy-config");
      }
      assert.ok(upstream.observations.metadata.has("via-envoy-config"));
    } finally {
      p.child.kill("SIGTERM");
      await p.exited;
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a fuller bootstrap: hosts, routes, TLS, keepalive, health checks, CORS mapped; the rest named by JSON path", () => {
    const doc = parseYaml(`
static_resources:
  listeners:
    - name: l
      address: { socket_address: { address: 0.0.0.0, port_value: 8443 } }
      filter_chains:
        - transport_socket:
            name: envoy.transport_sockets.tls
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
              common_tls_context:
                tls_certificates:
                  - certificate_chain: { filename: /etc/bridge/cert.pem }
                    private_key: { filename: /etc/bridge/key.pem }
          filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: ingress
                access_log: [{ name: envoy.access_loggers.stdout }]
                route_config:
                  virtual_hosts:
                    - name: all
                      domains: ["*"]
                      cors:
                        allow_origin_string_match: [{ exact: "https://app.example.com" }]
                        allow_headers: "authorization,x-trace"
                        max_age: "600"
                      routes:
                        - match: { prefix: "/users.v1.UserService/" }
                          route: { cluster: users }
                        - match: { safe_regex: { regex: "^/orders.*" } }
                          route: { cluster: orders }
                        - match: { prefix: "/discovered.v1." }
                          route: { cluster: discovered }
                        - match: { prefix: "/" }
                          route: { cluster: orders, timeout: 5s }
                    - name: admin
                      domains: ["admin.example.com"]
                      routes:
                        - match: { path: "/admin.v1.AdminService/Drain" }
                          route: { cluster: users }
                http_filters:
                  - name: envoy.filters.http.cors
                  - name: envoy.filters.http.grpc_web
                  - name: envoy.filters.http.connect_grpc_bridge
                  - name: envoy.filters.http.ext_authz
                  - name: envoy.filters.http.router
  clusters:
    - name: users
      type: STRICT_DNS
      lb_policy: LEAST_REQUEST
      dns_refresh_rate: 10s
      circuit_breakers: { thresholds: [{ max_connections: 100 }] }
      load_assignment:
        cluster_name: users
        endpoints:
          - lb_endpoints:
              - endpoint: { address: { socket_address: { address: users-0.internal, port_value: 50051 } } }
              - endpoint: { address: { socket_address: { address: "::1", port_value: 50052 } } }
                load_balancing_weight: 3
      http2_protocol_options:
        max_concurrent_streams: 50
        connection_keepalive: { interval: 20s, timeout: 2.5s }
      health_checks:
        - timeout: 1s
          interval: 3s
          healthy_threshold: 2
          unhealthy_threshold: 3
          grpc_health_check: { service_name: users.v1.UserService }
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
          sni: users.internal
          common_tls_context:
            alpn_protocols: [h2]
            tls_certificates:
              - certificate_chain: { filename: /etc/bridge/client.pem }
                private_key: { filename: /etc/bridge/client-key.pem }
            validation_context:
              trusted_ca: { filename: /etc/bridge/ca.pem }
    - name: orders
      type: STATIC
      lb_policy: RANDOM
      outlier_detection: { consecutive_5xx: 5 }
      load_assignment:
        endpoints:
          - lb_endpoints:
              - endpoint: { address: { socket_address: { address: 10.0.0.9, port_value: 9000 } } }
    - name: discovered
      type: EDS
      eds_cluster_config: { eds_config: { ads: {} } }
`);
    const { config, unsupported } = fromEnvoy(doc);
    assert.deepEqual(config.listen, { host: "0.0.0.0", port: 8443 });
    assert.deepEqual(config.tls, { certFile: "/etc/bridge/cert.pem", keyFile: "/etc/bridge/key.pem" });
    assert.deepEqual(config.cors, {
      allowedOrigins: ["https://app.example.com"],
      allowedHeaders: ["authorization", "x-trace"],
      exposedHeaders: [],
      maxAgeSeconds: 600,
    });
    // The specific virtual host first (Envoy picks hosts before routes); unsupported matches skipped.
    assert.deepEqual(config.routes, [
      { cluster: "users", path: "/admin.v1.AdminService/Drain", authority: ["admin.example.com"] },
      { cluster: "users", prefix: "/users.v1.UserService/" },
      { cluster: "orders" },
    ]);
    const clusters = config.clusters as Record<string, unknown>[];
    assert.deepEqual(clusters.map((c) => c.name), ["users", "orders"]);
    assert.deepEqual(clusters[0], {
      name: "users",
      lbPolicy: "least_requests",
      dnsRefreshMs: 10000,
      endpoints: ["users-0.internal:50051", "[::1]:50052"],
      maxStreamsPerConnection: 50,
      keepaliveIntervalMs: 20000,
      keepaliveTimeoutMs: 2500,
      healthCheck: { service: "users.v1.UserService", intervalMs: 3000, timeoutMs: 1000, healthyThreshold: 2, unhealthyThreshold: 3 },
      tls: { serverName: "users.internal", certFile: "/etc/bridge/client.pem", keyFile: "/etc/bridge/client-key.pem", caFile: "/etc/bridge/ca.pem" },
    });
    const l = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config";
    for (const path of [
      `${l}.access_log`,
      `${l}.route_config.virtual_hosts[0].routes[1].match.safe_regex`,
      `${l}.route_config.virtual_hosts[0].routes[2] (routes to cluster "discovered", which is not imported; route skipped)`,
      `${l}.route_config.virtual_hosts[0].routes[3].route.timeout`,
      `${l}.http_filters[3] (envoy.filters.http.ext_authz)`,
      "static_resources.clusters[0].circuit_breakers",
      "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[1].load_balancing_weight",
      "static_resources.clusters[1].lb_policy (RANDOM: only ROUND_ROBIN and LEAST_REQUEST; round_robin used)",
      "static_resources.clusters[1].outlier_detection",
      "static_resources.clusters[2].eds_cluster_config",
      "static_resources.clusters[2].type (EDS: only STATIC, STRICT_DNS and LOGICAL_DNS; cluster skipped)",
    ]) {
      assert.ok(unsupported.includes(path), `${path} in:\n${unsupported.join("\n")}`);
    }
    // What comes out is a valid bridge config (the TLS files are read when it runs).
    const withoutFiles = clusters.map((c) => ({ ...c, tls: undefined }));
    assert.equal(resolveDeployment(withoutFiles as never, config.routes as never).clusters.length, 2);
  });
});
