/**
 * The CLI as a child process, the way a user (or a container) runs it.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../../src/cli.js", import.meta.url));

export interface CliProcess {
  child: ReturnType<typeof spawn>;
  exited: Promise<number>;
  out(): string;
  err(): string;
  /** Resolves with the base URL once the process printed its listening line. */
  listening(): Promise<string>;
  /** Resolves once stdout has printed text matching `pattern`. */
  printed(pattern: RegExp): Promise<void>;
}

/** `nodeArgs`: Node's own flags, before the script (as `node --flag bin.js` has them). */
export function runCli(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []): CliProcess {
  const child = spawn(process.execPath, [...nodeArgs, cli, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    // No drain delay unless a test asks for one: the 5 s default is for load balancers, not tests.
    env: { ...process.env, CONNECT_GRPC_BRIDGE_DRAIN_DELAY_MS: "0", ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const exited = once(child, "exit").then(([code]) => code as number);
  const printed = async (pattern: RegExp) => {
    while (!pattern.test(stdout)) {
      const more = once(child.stdout!, "data");
      const gone = exited.then((code) => {
        throw new Error(`CLI exited (${code}) before printing ${pattern}: ${stderr}${stdout}`);
      });
      await Promise.race([more, gone]);
    }
  };
  return {
    child,
    exited,
    out: () => stdout,
    err: () => stderr,
    printed,
    listening: async () => {
      await printed(/listening on https?:\/\/\S+:\d+/);
      return /listening on (https?:\/\/\S+:\d+)/.exec(stdout)![1]!;
    },
  };
}
