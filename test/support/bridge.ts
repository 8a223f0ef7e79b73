/**
 * Starts the bridge in front of an upstream on a port chosen by the OS.
 */
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { createBridge, type CreateBridgeOptions } from "../../src/index.js";

export interface RunningBridge {
  app: FastifyInstance;
  port: number;
  baseUrl: string;
  close(): Promise<void>;
}

export async function startBridge(
  upstream: CreateBridgeOptions["upstream"],
  options: Omit<CreateBridgeOptions, "upstream"> = {},
): Promise<RunningBridge> {
  const app = createBridge({ upstream, ...options });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const port = (app.server.address() as AddressInfo).port;
  return {
    app,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    close: async () => {
      app.server.closeAllConnections();
      await app.close();
    },
  };
}
