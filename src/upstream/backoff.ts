/**
 * Reconnect delays after failed connections, as gRPC's connection-backoff
 * document describes them: exponential (x1.6 per failure) from a base up to
 * a cap, each delay jittered by ±20% so that endpoints that failed together
 * do not all come back in the same instant.
 */

const multiplier = 1.6;
const jitter = 0.2;

/**
 * The delay before the next connection attempt after `failures` consecutive
 * failures (1 = the first failure).
 *
 * @param random a source in [0, 1); tests pass a fixed one.
 */
export function backoffDelay(failures: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, failures - 1);
  const unjittered = Math.min(maxMs, baseMs * multiplier ** exponent);
  return Math.max(0, Math.round(unjittered * (1 + jitter * (2 * random() - 1))));
}
