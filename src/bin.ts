#!/usr/bin/env node
/**
 * The installed `connect-grpc-bridge` command. It says in one line when the
 * Node.js running it is not a supported one, before loading anything a too
 * old runtime could fail on, then runs the CLI.
 */
const supportedMajor = 22;
const major = Number(process.versions.node.split(".")[0]);
if (major < supportedMajor) {
  process.stderr.write(
    `connect-grpc-bridge: Node.js ${process.version} is not supported (end of life); use Node.js ${supportedMajor} or 24\n`,
  );
}
await import("./cli.js");
