/**
 * The REST routes of a bridge: its schema's HTTP bindings, checked for
 * conflicts once at start, and matched per request by verb and path.
 */
import type { Registry } from "@bufbuild/protobuf";
import { assertNoRouteConflicts, listHttpBindings, servicesOf, type HttpBinding } from "./bindings.js";
import { matchTemplate, type PathBinding } from "./path-template.js";

/** A request a binding takes: the binding and the path variables it bound. */
export interface RestMatch {
  readonly binding: HttpBinding;
  readonly variables: PathBinding[];
  /** The registry messages, `Any` and error details are resolved through. */
  readonly types: Registry;
}

export class RestRoutes {
  /** Per verb, most specific template first; `*` holds custom rules that take any verb. */
  private readonly byVerb = new Map<string, HttpBinding[]>();
  /** Every verb some binding names (custom ones included), upper case. */
  readonly verbs: ReadonlySet<string>;

  /**
   * Lists `types`' bindings and refuses conflicting ones: throws an
   * HttpBindingError naming both sides of each conflict.
   */
  constructor(readonly types: Registry) {
    const bindings = listHttpBindings(types);
    assertNoRouteConflicts(bindings, servicesOf(types));
    for (const binding of bindings) {
      const list = this.byVerb.get(binding.verb) ?? [];
      list.push(binding);
      this.byVerb.set(binding.verb, list);
    }
    for (const list of this.byVerb.values()) list.sort(bySpecificity);
    this.verbs = new Set(this.byVerb.keys());
    this.bindings = bindings;
  }

  /** Every binding, in declaration order. */
  readonly bindings: readonly HttpBinding[];

  /** The binding that takes `verb` `path` (raw path, no query), or undefined. */
  match(verb: string, path: string): RestMatch | undefined {
    return this.matchIn(this.byVerb.get(verb), path) ?? this.matchIn(this.byVerb.get("*"), path);
  }

  private matchIn(list: HttpBinding[] | undefined, path: string): RestMatch | undefined {
    if (list === undefined) return undefined;
    for (const binding of list) {
      const variables = matchTemplate(binding.template, path);
      if (variables !== undefined) return { binding, variables, types: this.types };
    }
    return undefined;
  }
}

/**
 * Literal segments before wildcards, segment by segment; a verb suffix
 * before none; "**" last. Templates of one shape never share a verb (a
 * conflict), so the order among equals does not matter.
 */
function bySpecificity(a: HttpBinding, b: HttpBinding): number {
  const x = a.template.segments;
  const y = b.template.segments;
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const rank = (s: (typeof x)[number]) => (s.kind === "literal" ? 0 : s.kind === "single" ? 1 : 2);
    const d = rank(x[i]) - rank(y[i]);
    if (d !== 0) return d;
  }
  if ((a.template.verb === undefined) !== (b.template.verb === undefined)) return a.template.verb === undefined ? 1 : -1;
  return y.length - x.length;
}
