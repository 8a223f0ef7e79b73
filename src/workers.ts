/**
 * `--workers N`: the CLI as N processes sharing one listening socket
 * (node:cluster; the primary accepts connections and hands them out round
 * robin). One Node process serves one core's worth of calls; this is how the
 * bridge uses more. Each worker is a whole bridge with its own upstream
 * connections; nothing is shared between them, so nothing needs locking.
 */
import cluster, { type Worker } from "node:cluster";

/** Restarts of crashed workers are spaced so a crash loop does not spin. */
const restartDelayMs = 1000;

/**
 * In the primary: forks `count` workers running this same command line,
 * prints the "listening" line once all of them listen, restarts workers that crash,
 * and relays SIGINT/SIGTERM so every worker drains (src/cli.ts); exits 0
 * once all of them exited 0, 1 if one did not. Returns true there
 * (the caller must not start a server); false in a worker, or when `count`
 * is 1 (no cluster at all: the single process serves).
 */
export function startWorkers(count: number): boolean {
  if (count <= 1 || cluster.isWorker) return false;
  let stopping = false;
  let failed = false;
  // The line is the readiness signal: printed once every worker listens, so
  // that nothing relies on a port only some of the workers serve.
  let listening = 0;
  const fork = (): Worker => {
    const worker = cluster.fork();
    worker.on("message", (message: unknown) => {
      if (typeof message === "object" && message !== null && "listening" in message && ++listening === count) {
        process.stdout.write(`${String(message.listening)} (${count} workers)\n`);
      }
    });
    return worker;
  };
  for (let i = 0; i < count; i++) fork();
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) {
      if (code !== 0) {
        failed = true;
        process.stderr.write(`connect-grpc-bridge: worker ${worker.process.pid} exited (${signal ?? `code ${code}`}) while draining\n`);
      }
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(failed ? 1 : 0);
      return;
    }
    process.stderr.write(
      `connect-grpc-bridge: worker ${worker.process.pid} exited (${signal ?? `code ${code}`}); restarting it\n`,
    );
    setTimeout(fork, restartDelayMs).unref();
  });
  const stop = (signal: NodeJS.Signals) => {
    // Relayed twice, the signal makes each worker exit at once too (code 1).
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
    if (stopping) process.exit(1); // a second signal means now
    stopping = true;
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  return true;
}

/** Prints the listening line, or hands it to the primary to print once. */
export function announceListening(line: string): void {
  if (cluster.isWorker) process.send?.({ listening: line });
  else process.stdout.write(line + "\n");
}
