/**
 * The Dockerfile and the Kubernetes manifests, linted: no container engine
 * or cluster runs here, so what the bridge relies on is checked by reading
 * them: probes on the admin port of the config the ConfigMap holds, a grace
 * period above the drain, a config the bridge itself accepts, a non-root
 * image with only production dependencies.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { loadConfig } from "../../src/config/load.js";
import { BridgeConfigSchema } from "../../src/config/schema.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const manifestsDir = join(root, "examples/kubernetes");

// The admin listener is another part of issue 13 (item 4); until it is in
// the schema, the ConfigMap's `admin` block is checked by shape only.
const adminInSchema = "admin" in BridgeConfigSchema.properties;

type Doc = Record<string, any>;

function manifests(): Doc[] {
  const docs: Doc[] = [];
  for (const file of readdirSync(manifestsDir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(manifestsDir, file), "utf8"))) {
      assert.deepEqual(doc.errors, [], `${file}: ${doc.errors.join("; ")}`);
      const value = doc.toJS() as Doc | null;
      if (value === null) continue;
      assert.ok(typeof value.apiVersion === "string" && typeof value.kind === "string" && typeof value.metadata?.name === "string", `${file}: apiVersion, kind, metadata.name`);
      docs.push({ ...value, file });
    }
  }
  return docs;
}

function only(docs: Doc[], kind: string, name?: string): Doc {
  const found = docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
  assert.equal(found.length, 1, `one ${kind}${name ? ` ${name}` : ""}`);
  return found[0]!;
}

/** The ConfigMap's bridge config as loadConfig sees it, from a file as the pod reads it. */
function loadConfigMap(text: string) {
  const dir = mkdtempSync(join(tmpdir(), "bridge-deployment-"));
  try {
    const raw = parseAllDocuments(text)[0]!.toJS() as Doc;
    if (!adminInSchema) delete raw.admin;
    const file = join(dir, "bridge.yaml");
    writeFileSync(file, JSON.stringify(raw));
    return loadConfig({ config: file }, {}, { readFiles: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("deployment: Kubernetes manifests", () => {
  const docs = manifests();
  const deployment = only(docs, "Deployment");
  const configMap = only(docs, "ConfigMap");
  const pod = deployment.spec.template.spec;
  const container = pod.containers.find((c: Doc) => c.name === "bridge");
  const configText = configMap.data["bridge.yaml"] as string;
  const raw = parseAllDocuments(configText)[0]!.toJS() as Doc;
  const portOf = (name: number | string) => (typeof name === "number" ? name : container.ports.find((p: Doc) => p.name === name)?.containerPort);

  it("the ConfigMap's config is valid for the bridge itself (loadConfig, defaults applied)", () => {
    const { config, deployment: clusters } = loadConfigMap(configText);
    assert.equal(config.listen.host, "0.0.0.0");
    assert.ok(clusters !== undefined && clusters.clusters.length > 0);
  });

  it("the ConfigMap's admin listener is reachable from the kubelet", { skip: adminInSchema ? false : "not validated by loadConfig: the admin listener (issue 13 item 4, the admin part) is not on this branch" }, () => {
    const { config } = loadConfigMap(configText);
    const admin = (config as unknown as Doc).admin;
    assert.equal(admin.host, "0.0.0.0");
    assert.equal(admin.port, raw.admin.port);
  });

  it("probes: readiness /readyz and liveness /healthz on the config's admin port; the data port is the config's", () => {
    assert.ok(Number.isInteger(raw.admin?.port), "the ConfigMap's config sets admin.port");
    assert.equal(container.readinessProbe.httpGet.path, "/readyz");
    assert.equal(container.livenessProbe.httpGet.path, "/healthz");
    assert.equal(portOf(container.readinessProbe.httpGet.port), raw.admin.port);
    assert.equal(portOf(container.livenessProbe.httpGet.port), raw.admin.port);
    assert.equal(portOf("http"), raw.listen.port);
  });

  it("the pod runs the config the ConfigMap holds", () => {
    const volume = pod.volumes.find((v: Doc) => v.configMap?.name === configMap.metadata.name);
    assert.ok(volume, "a volume of the ConfigMap");
    const mount = container.volumeMounts.find((m: Doc) => m.name === volume.name);
    const args: string[] = container.args;
    assert.equal(args[args.indexOf("--config") + 1], `${mount.mountPath}/bridge.yaml`);
  });

  it("terminationGracePeriodSeconds is above drainDelayMs + drainTimeoutMs", () => {
    const { config } = loadConfigMap(configText);
    const drainMs = config.drainDelayMs + config.drainTimeoutMs;
    assert.ok(pod.terminationGracePeriodSeconds * 1000 > drainMs, `${pod.terminationGracePeriodSeconds} s <= ${drainMs} ms`);
  });

  it("non-root, no privilege escalation, resources set", () => {
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.notEqual(pod.securityContext.runAsUser, 0);
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.ok(container.resources.requests.cpu && container.resources.requests.memory && container.resources.limits.memory);
  });

  it("Prometheus scrape annotations name the admin port and /metrics", () => {
    const annotations = deployment.spec.template.metadata.annotations;
    assert.equal(annotations["prometheus.io/scrape"], "true");
    assert.equal(Number(annotations["prometheus.io/port"]), raw.admin.port);
    assert.equal(annotations["prometheus.io/path"], "/metrics");
  });

  it("the Service and the HorizontalPodAutoscaler point at the bridge's pods", () => {
    const service = only(docs, "Service", deployment.metadata.name);
    assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
    assert.equal(portOf(service.spec.ports[0].targetPort), raw.listen.port);
    const hpa = only(docs, "HorizontalPodAutoscaler");
    assert.equal(hpa.spec.scaleTargetRef.kind, "Deployment");
    assert.equal(hpa.spec.scaleTargetRef.name, deployment.metadata.name);
    assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas > hpa.spec.minReplicas);
  });

  it("the cluster resolves a headless Service of the manifests by DNS", () => {
    const endpoint: string = raw.clusters[0].endpoints[0];
    const [host, port] = [endpoint.slice(0, endpoint.lastIndexOf(":")), Number(endpoint.slice(endpoint.lastIndexOf(":") + 1))];
    const [name, namespace] = host.split(".");
    const upstream = only(docs, "Service", name);
    assert.equal(upstream.spec.clusterIP, "None", "headless: DNS answers with every pod");
    assert.equal(upstream.metadata.namespace ?? "default", namespace);
    assert.ok(upstream.spec.ports.some((p: Doc) => p.port === port), `port ${port}`);
    assert.ok(raw.clusters[0].dnsRefreshMs > 0);
  });
});

describe("deployment: Dockerfile", () => {
  const text = readFileSync(join(root, "Dockerfile"), "utf8");
  // Continuation lines joined, comments dropped: one instruction per line.
  const lines = text.replace(/\\\n\s*/g, " ").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  const stages = lines.map((l, i) => (l.startsWith("FROM ") ? i : -1)).filter((i) => i >= 0);
  const runtime = lines.slice(stages.at(-1));

  it("is multi-stage; the runtime stage installs production dependencies only", () => {
    assert.ok(stages.length >= 2, "a build stage and a runtime stage");
    assert.ok(lines.slice(0, stages.at(-1)).some((l) => /^RUN .*npm ci\b/.test(l) && !l.includes("--omit=dev")), "the build stage installs dev dependencies");
    assert.ok(runtime.some((l) => /^RUN .*npm ci --omit=dev/.test(l)), "npm ci --omit=dev in the runtime stage");
  });

  it("copies every peer dependency into the runtime (npm ci --omit=dev leaves them out)", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { peerDependencies: Record<string, string> };
    for (const name of Object.keys(pkg.peerDependencies)) {
      assert.ok(runtime.some((l) => l.startsWith("COPY --from=") && l.includes(`node_modules/${name} `)), name);
    }
  });

  it("runs as a non-root user, node dist/src/cli.js as entrypoint, health-checked on the admin port's /healthz", () => {
    const user = runtime.filter((l) => l.startsWith("USER ")).at(-1);
    assert.ok(user !== undefined && !/^USER (root|0)(:|$)/.test(user), String(user));
    assert.ok(runtime.includes('ENTRYPOINT ["node", "dist/src/cli.js"]'));
    const adminPort = /CONNECT_GRPC_BRIDGE_ADMIN_PORT=(\d+)/.exec(runtime.join("\n"))?.[1];
    assert.ok(adminPort !== undefined, "the image sets the admin port");
    const check = runtime.find((l) => l.startsWith("HEALTHCHECK "));
    assert.ok(check?.includes(`:${adminPort}/healthz`), String(check));
  });

  it(".dockerignore keeps the host's node_modules and dist out of the build context", () => {
    const ignored = readFileSync(join(root, ".dockerignore"), "utf8").split("\n").map((l) => l.trim());
    for (const entry of ["node_modules", "dist", ".git"]) assert.ok(ignored.includes(entry), entry);
  });
});
