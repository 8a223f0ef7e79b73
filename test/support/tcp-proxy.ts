/**
 * A TCP proxy in front of a real server, for tests that need to see or
 * stop what travels between the bridge and an upstream: it counts
 * connections and can freeze (bytes stop flowing both ways while both
 * sockets stay open, like a peer that hung or a path that black-holes).
 */
import * as net from "node:net";

export interface TcpProxy {
  address: string;
  /** Client-side sockets accepted so far, in order. */
  sockets: net.Socket[];
  frozen: boolean;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  const sockets: net.Socket[] = [];
  const proxy: TcpProxy = { address: "", sockets, frozen: false, close: async () => {} };
  const server = net.createServer((client) => {
    sockets.push(client);
    const upstream = net.connect(targetPort, targetHost);
    client.on("data", (chunk) => proxy.frozen || upstream.write(chunk));
    upstream.on("data", (chunk) => proxy.frozen || client.write(chunk));
    client.on("error", () => {});
    upstream.on("error", () => {});
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return proxy;
}
