// Turning benchmark rows into ratios, target checks, a markdown report and an
// SVG chart (hand-written: a bar chart is a few dozen lines of SVG, not worth
// a charting dependency).

const baselineNames = {
  direct: "direct gRPC (baseline 1)",
  thin: "thin Node bridge (baseline 2)",
  connect: "connect-fastify proxy (baseline 3)",
  grpcweb: "@grpc-web/proxy (baseline 4)",
  "direct-grpcjs": "direct gRPC to grpc-js",
  "workers-1": "1 worker",
  "bridge-aa": "the same bridge, second process (A/A: noise)",
  "obs-metrics": "the same bridge with --metrics",
  "obs-metrics-tracing": "the same bridge with --metrics --tracing (no exporter)",
  "bridge-post": "the same call as POST",
};

/** The runtime the targets are judged on: the first one measured (Node 24). */
const firstRuntime = (report) => report.runtimes?.[0] ?? report.results[0]?.runtime;
const onRuntime = (report, runtime) => report.results.filter((r) => (r.runtime ?? runtime) === runtime);

/** Rows grouped by scenario, in the order they ran. */
function byScenario(results) {
  const groups = new Map();
  for (const row of results) {
    if (!groups.has(row.scenario)) groups.set(row.scenario, []);
    groups.get(row.scenario).push(row);
  }
  return groups;
}

/** The row a scenario is about: the bridge (or 2 workers), compared with the rest. */
function subjectOf(rows) {
  return (
    rows.find((r) => r.target === "workers-2") ??
    // An observability cell is about the bridge with the most layers on, against fewer or none.
    rows.find((r) => r.target === "obs-metrics-tracing") ??
    rows.find((r) => r.target === "obs-metrics") ??
    rows.find((r) => r.target.startsWith("bridge"))
  );
}

/** The throughput a scenario compares: MB/s for streams, requests/s otherwise. */
const rate = (row) => row.mbPerSecond ?? row.rps;

/**
 * One row per scenario and server: the run with the median throughput when
 * a cell was measured several times, with every run's throughput in `runs`.
 */
export function collapse(results) {
  const groups = new Map();
  for (const row of results) {
    const key = `${row.runtime}\u0000${row.scenario}\u0000${row.target}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(row);
  }
  return [...groups.values()].map((rows) => {
    const sorted = [...rows].sort((a, b) => rate(a) - rate(b));
    return { ...sorted[Math.floor((sorted.length - 1) / 2)], runs: rows.map(rate) };
  });
}

/** [{ scenario, subject, baseline, ratio, addedP50Ms }] for every pair measured together, on one runtime (default: the first). */
export function ratios(report, runtime = firstRuntime(report)) {
  const out = [];
  for (const [scenario, rows] of byScenario(collapse(onRuntime(report, runtime)))) {
    const subject = subjectOf(rows);
    if (subject === undefined) continue;
    for (const row of rows) {
      if (row === subject) continue;
      out.push({
        scenario,
        subject,
        baseline: row,
        ratio: rate(row) ? Math.round((rate(subject) / rate(row)) * 100) / 100 : null,
        addedP50Ms: Math.round((subject.p50Ms - row.p50Ms) * 1000) / 1000,
      });
    }
  }
  return out;
}

/** The issue's targets (issue 15), judged on the first runtime, each with the numbers that decide it. */
export function targetChecks(report) {
  const all = ratios(report);
  const find = (scenario, baseline) => all.find((r) => r.scenario === scenario && r.baseline.target === baseline);
  const checks = [];
  const ratioCheck = (name, r, min) => {
    if (r) checks.push({ name, met: r.ratio >= min, detail: `${r.ratio}x (${fmtRate(r.subject)} vs ${fmtRate(r.baseline)}; ${cpu(r.subject)} vs ${cpu(r.baseline)})` });
  };
  ratioCheck("unary 1 KiB c64 >= 0.90x the thin bridge", find("connect unary proto 1KiB c64", "thin"), 0.9);
  for (const size of ["64B", "64KiB"]) {
    for (const c of [16, 256]) ratioCheck(`unary ${size} c${c} >= 0.85x the thin bridge`, find(`connect unary proto ${size} c${c}`, "thin"), 0.85);
  }
  ratioCheck("Connect GET 1 KiB c16 >= 0.90x the same call as POST", find("connect get 1KiB c16", "bridge-post"), 0.9);
  ratioCheck("gRPC-Web binary 1 KiB c64 >= 3x @grpc-web/proxy", find("grpc-web unary 1KiB c64", "grpcweb"), 3);
  ratioCheck("unary 1 KiB c64 >= 2x connect-fastify proxy", find("connect unary proto 1KiB c64", "connect"), 2);
  for (const r of all.filter((x) => x.scenario.startsWith("connect server stream") && x.baseline.target === "thin")) {
    ratioCheck(`${r.scenario} >= 0.90x the thin pipe's MB/s`, r, 0.9);
  }
  // Issue 13: each observability layer costs at most 3% of throughput.
  ratioCheck("metrics on costs <= 3% of unary 1 KiB c64 throughput", find("observability: metrics on, unary 1KiB c64", "bridge"), 0.97);
  ratioCheck("tracing (no exporter) costs <= 3% more than metrics alone", find("observability: metrics and tracing on, unary 1KiB c64", "obs-metrics"), 0.97);
  const c1 = find("connect unary proto 1KiB c1", "direct");
  const thinC1 = find("connect unary proto 1KiB c1", "thin");
  if (c1 && thinC1) {
    const thinAdded = Math.round((thinC1.baseline.p50Ms - c1.baseline.p50Ms) * 1000) / 1000;
    checks.push({
      name: "unary 1 KiB c1: p50 added over direct gRPC <= the thin bridge's + 0.05 ms",
      met: c1.addedP50Ms <= thinAdded + 0.05,
      detail: `bridge +${c1.addedP50Ms} ms, thin +${thinAdded} ms (direct ${c1.baseline.p50Ms} ms)`,
    });
  }
  if (report.openStreams) {
    const o = report.openStreams;
    checks.push({ name: "<= 16 KiB RSS per idle open stream", met: o.perStreamKiB <= 16, detail: `${o.perStreamKiB} KiB (${o.streams} streams, ${o.rssBeforeMiB} -> ${o.rssOpenMiB} MiB)` });
  }
  return checks;
}

function cpu(row) {
  return row.cpuUsPerRequest === undefined || row.cpuUsPerRequest === null ? "CPU n/a" : `${row.cpuUsPerRequest} µs CPU/req`;
}

/** Each scenario and server on every runtime side by side (req/s or MB/s, CPU µs per request). */
function runtimeColumns(report) {
  const table = runtimeTable(report);
  if (table.length === 0) return [];
  return [
    "## Runtimes side by side",
    "",
    `The cells measured on every runtime (${report.runtimes.join(", ")}): throughput, then CPU µs per request of the server.`,
    "",
    ...table,
    "",
  ];
}

/** The rows of the runtimes-side-by-side table (also the README's); none with one runtime. */
export function runtimeTable(report) {
  const runtimes = report.runtimes ?? [];
  if (runtimes.length < 2) return [];
  const rows = collapse(report.results);
  const cellOf = (runtime, scenario, target) => rows.find((r) => r.runtime === runtime && r.scenario === scenario && r.target === target);
  const keys = [...new Map(rows.filter((r) => r.runtime === runtimes[1]).map((r) => [`${r.scenario}\u0000${r.target}`, r])).values()];
  return [
    `| scenario | server | ${runtimes.map((r) => `${r} | ${r} CPU µs/req`).join(" | ")} |`,
    `|---|---|${runtimes.map(() => "---:|---:").join("|")}|`,
    ...keys.map((k) => {
      const cells = runtimes.map((rt) => {
        const c = cellOf(rt, k.scenario, k.target);
        return c === undefined ? " | " : `${fmtRate(c)} | ${c.cpuUsPerRequest ?? ""}`;
      });
      return `| ${k.scenario} | ${k.target} | ${cells.join(" | ")} |`;
    }),
  ];
}

export function resultsMarkdown(report) {
  const m = report.machine;
  const lines = [
    `# Benchmark results (${report.kind} run, ${report.date})`,
    "",
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}. ${report.layout}. ${report.secondsPerMeasurement} s per measurement after a warm-up.${report.cpuStolenPercent === undefined ? "" : ` The host took ${report.cpuStolenPercent}% of the CPU time during the run (steal in /proc/stat): the higher, the slower and noisier every cell.`}`,
    "",
    `Runtimes: ${(report.runtimes ?? [m.node]).join(", ")}; the targets, ratios and chart are those of the first. The A/A row (bridge vs bridge-aa, two processes of the same build) shows the run's noise.`,
    "",
    "## Targets",
    "",
    "| target | met | measured |",
    "|---|---|---|",
    ...report.targets.map((t) => `| ${t.name} | ${t.met ? "yes" : "**no**"} | ${t.detail} |`),
    "",
    "## Bridge ÷ baseline",
    "",
    "Throughput ratio (requests/s; MB/s of payload for streams), CPU µs per request of each server (direct gRPC: no server of ours, none), and the p50 latency the bridge adds.",
    "",
    "| scenario | baseline | ratio | bridge | baseline | bridge CPU µs/req | baseline CPU µs/req | p50 added |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
    ...ratios(report).map(
      (r) =>
        `| ${r.scenario} | ${baselineNames[r.baseline.target] ?? r.baseline.target} | ${r.ratio}x | ${fmtRate(r.subject)} | ${fmtRate(r.baseline)} | ${r.subject.cpuUsPerRequest ?? ""} | ${r.baseline.cpuUsPerRequest ?? ""} | ${r.addedP50Ms} ms |`,
    ),
    "",
    ...runtimeColumns(report),
    "",
    "## Every measurement",
    "",
    "Cells measured several times show the median run; `runs` lists every run's throughput, in the order they ran.",
    "",
    "| runtime | scenario | server | req/s | MB/s | p50 ms | p99 ms | CPU µs/req | errors | runs |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ...collapse(report.results).map(
      (r) =>
        `| ${r.runtime ?? ""} | ${r.scenario} | ${r.target} | ${r.rps} | ${r.mbPerSecond ?? ""} | ${r.p50Ms} | ${r.p99Ms} | ${r.cpuUsPerRequest ?? ""} | ${r.errors} | ${r.runs.length > 1 ? r.runs.join(", ") : ""} |`,
    ),
    "",
  ];
  if (report.openStreams) {
    const o = report.openStreams;
    lines.push("## Open streams", "", `${o.streams} idle Connect server streams over h2c (100 per connection), all open in ${o.openMs} ms: bridge RSS ${o.rssBeforeMiB} MiB -> ${o.rssOpenMiB} MiB, **${o.perStreamKiB} KiB per stream** (connections and upstream sessions included).`, "");
  }
  if (report.workers) {
    const w = report.workers.runs;
    lines.push("## Workers", "", `--workers 1: ${w[0].rps} req/s (${w[0].rpsPerWorker ?? w[0].rps} per worker); --workers 2: ${w[1].rps} req/s (${w[1].rpsPerWorker ?? w[1].rps / 2} per worker; ${report.workers.scaling}x). Both cores shared with wrk and the upstream, so this shows the mechanism, not the scaling a machine with spare cores gets.`, "");
  }
  return lines.join("\n");
}

function fmtRate(row) {
  return row.mbPerSecond !== undefined ? `${row.mbPerSecond} MB/s` : `${row.rps} req/s`;
}

/** Horizontal bars of bridge ÷ baseline, with the 1.0 and 0.85 lines. */
export function ratioChart(report) {
  const rows = ratios(report).filter((r) => r.ratio !== null);
  const barHeight = 18;
  const gap = 6;
  const labelWidth = 470;
  const plotWidth = 380;
  const top = 40;
  const max = Math.max(2.5, ...rows.map((r) => r.ratio));
  const x = (v) => labelWidth + (v / max) * plotWidth;
  const height = top + rows.length * (barHeight + gap) + 48;
  const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + plotWidth + 60}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">connect-grpc-bridge ÷ baseline (throughput), ${esc(report.kind)} run ${esc(report.date.slice(0, 10))}</text>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * (barHeight + gap);
    // Direct gRPC is the floor (no bridge at all): grey, not a verdict. The
    // others are judged against the issue's targets.
    const target =
      r.baseline.target === "thin" ? 0.9 : r.baseline.target === "grpcweb" ? 3 : r.baseline.target === "connect" ? 2 : r.baseline.target === "bridge-post" ? 0.9 : 1;
    const color = r.baseline.target.startsWith("direct") ? "#9e9e9e" : r.ratio >= target ? "#2e7d32" : r.ratio >= 0.85 * target ? "#f9a825" : "#c62828";
    parts.push(
      `<text x="${labelWidth - 8}" y="${y + 13}" text-anchor="end">${esc(r.scenario)} vs ${esc(r.baseline.target)}</text>`,
      `<rect x="${labelWidth}" y="${y}" width="${x(r.ratio) - labelWidth}" height="${barHeight}" fill="${color}"/>`,
      `<text x="${x(r.ratio) + 4}" y="${y + 13}">${r.ratio}x</text>`,
    );
  });
  const bottom = top + rows.length * (barHeight + gap);
  for (const [v, dash, anchor] of [[1, "", "start"], [0.85, ' stroke-dasharray="4 3"', "end"]]) {
    parts.push(`<line x1="${x(v)}" y1="${top - 6}" x2="${x(v)}" y2="${bottom}" stroke="black"${dash}/>`);
    parts.push(`<text x="${x(v) + (anchor === "start" ? 3 : -3)}" y="${bottom + 16}" text-anchor="${anchor}">${v}x</text>`);
  }
  parts.push(
    `<text x="10" y="${bottom + 34}" fill="#555">grey: vs direct gRPC (no bridge: the floor); green/amber/red: vs the issue's target for that baseline (thin 0.90x, POST 0.90x, connect-fastify 2x, @grpc-web/proxy 3x); bridge-aa: A/A noise</text>`,
  );
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
