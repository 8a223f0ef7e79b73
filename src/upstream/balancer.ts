/**
 * How a cluster picks one of its usable endpoints for a call. Pickers see the
 * cluster's current list of usable endpoints (rebuilt when an endpoint's
 * state changes, not per call) and pick in O(1) without allocating.
 */

/** What a picker needs to know about an endpoint. */
export interface Pickable {
  /** Streams open on the endpoint now. */
  readonly inFlight: number;
}

export interface Picker<T extends Pickable> {
  /**
   * One of `endpoints`, or undefined when it is empty. When `avoid` is given
   * and another endpoint exists, that one is picked (a retry goes elsewhere).
   */
  pick(endpoints: readonly T[], avoid?: T): T | undefined;
}

/** Each endpoint in turn. */
export class RoundRobinPicker<T extends Pickable> implements Picker<T> {
  private next = 0;

  pick(endpoints: readonly T[], avoid?: T): T | undefined {
    const count = endpoints.length;
    if (count === 0) return undefined;
    let chosen = endpoints[this.next++ % count]!;
    if (chosen === avoid && count > 1) chosen = endpoints[this.next++ % count]!;
    if (this.next >= 0x3fffffff) this.next = 0;
    return chosen;
  }
}

/**
 * The less loaded of two endpoints chosen at random ("power of two
 * choices"): nearly as good as scanning for the least loaded one, O(1), and
 * without the herd effect of every bridge picking the same idle endpoint.
 */
export class LeastRequestsPicker<T extends Pickable> implements Picker<T> {
  constructor(private readonly random: () => number = Math.random) {}

  pick(endpoints: readonly T[], avoid?: T): T | undefined {
    const count = endpoints.length;
    if (count === 0) return undefined;
    if (count === 1) return endpoints[0];
    const i = Math.floor(this.random() * count);
    // A second index different from the first, uniformly.
    const j = (i + 1 + Math.floor(this.random() * (count - 1))) % count;
    const a = endpoints[i]!;
    const b = endpoints[j]!;
    if (a === avoid) return b;
    if (b === avoid) return a;
    return b.inFlight < a.inFlight ? b : a;
  }
}
