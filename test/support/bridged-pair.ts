/**
 * The set-up many wire tests share: a @grpc/grpc-js upstream and a scripted
 * fault upstream, each behind a bridge of its own.
 */
import { after, before } from "node:test";
import { startGrpcJsServer, type RunningServer } from "./grpc-js-server.js";
import { startFaultServer, type FaultServer } from "./fault-server.js";
import { startBridge, type RunningBridge } from "./bridge.js";
import type { CreateBridgeOptions } from "../../src/index.js";

export interface BridgedPair {
  upstream: RunningServer;
  faults: FaultServer;
  /** In front of the grpc-js upstream. */
  bridge: RunningBridge;
  /** In front of the fault upstream. */
  faultBridge: RunningBridge;
}

/**
 * Registers before/after hooks in the current suite; the returned object is
 * filled in before the first test runs.
 */
export function useBridgedPair(options: Omit<CreateBridgeOptions, "upstream"> = {}): BridgedPair {
  const pair = {} as BridgedPair;
  before(async () => {
    pair.upstream = await startGrpcJsServer();
    pair.faults = await startFaultServer();
    pair.bridge = await startBridge(pair.upstream.address, options);
    pair.faultBridge = await startBridge(pair.faults.address);
  });
  after(async () => {
    await pair.bridge.close();
    await pair.faultBridge.close();
    await pair.upstream.close();
    await pair.faults.close();
  });
  return pair;
}
