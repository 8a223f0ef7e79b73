/**
 * google.api.http path templates (the grammar in google/api/http.proto):
 *
 *     Template = "/" Segments [ Verb ] ;
 *     Segments = Segment { "/" Segment } ;
 *     Segment  = "*" | "**" | LITERAL | Variable ;
 *     Variable = "{" FieldPath [ "=" Segments ] "}" ;
 *     FieldPath = IDENT { "." IDENT } ;
 *     Verb     = ":" LITERAL ;
 *
 * Parsed once at start into a flat list of segments plus the variables that
 * cover ranges of them, then matched against raw (still percent-encoded)
 * request paths, so each variable is decoded by its own rule.
 */

/** One segment of a parsed template. */
export type TemplateSegment =
  /** Matches exactly this (percent-decoded) text. */
  | { readonly kind: "literal"; readonly value: string }
  /** `*`: exactly one segment. */
  | { readonly kind: "single" }
  /** `**`: zero or more segments; only ever the last segment. */
  | { readonly kind: "multi" };

/** A `{field.path=...}` variable: which field it binds and which segments it covers. */
export interface TemplateVariable {
  /** The field path as written, e.g. `book.name`. */
  readonly fieldPath: string;
  /** Index of its first segment in `ParsedTemplate.segments`. */
  readonly start: number;
  /** Index after its last segment. */
  readonly end: number;
  /**
   * True when the variable covers exactly one `*` segment (`{var}`,
   * `{var=*}`): its value is fully percent-decoded, `%2F` included.
   * Otherwise `%2F`/`%2f` stay encoded, as http.proto says.
   */
  readonly singleSegment: boolean;
}

/** A template, parsed. */
export interface ParsedTemplate {
  /** The template as written in the annotation. */
  readonly source: string;
  readonly segments: readonly TemplateSegment[];
  readonly variables: readonly TemplateVariable[];
  /** The custom verb after the last `:` (`publish` in `/v1/{name=*}:publish`), if any. */
  readonly verb: string | undefined;
  /**
   * The template with variables erased (`/v1/shelves/*\/books/*:publish`): two
   * templates with the same shape match exactly the same paths.
   */
  readonly shape: string;
}

/** A path variable bound by a match: the field path and its decoded value. */
export interface PathBinding {
  readonly fieldPath: string;
  readonly value: string;
}

/** A template that does not follow http.proto's grammar; the message says where. */
export class TemplateError extends Error {
  constructor(template: string, reason: string) {
    super(`invalid path template "${template}": ${reason}`);
    this.name = "TemplateError";
  }
}

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses `source`; throws TemplateError with the reason when it is not a valid template. */
export function parseTemplate(source: string): ParsedTemplate {
  if (!source.startsWith("/")) throw new TemplateError(source, 'it must start with "/"');
  let body = source.slice(1);
  let verb: string | undefined;
  // The verb is after the last ":" that is outside a variable's braces.
  const lastColon = body.lastIndexOf(":");
  if (lastColon >= 0 && body.indexOf("}", lastColon) < 0) {
    verb = body.slice(lastColon + 1);
    body = body.slice(0, lastColon);
    if (verb === "" || verb.includes("/")) throw new TemplateError(source, "the verb after ':' must be one literal segment");
  }
  const segments: TemplateSegment[] = [];
  const variables: TemplateVariable[] = [];
  let i = 0;
  const readSegments = (inVariable: boolean) => {
    for (;;) {
      const stop = inVariable ? "/}" : "/";
      let j = i;
      if (body[i] === "{") {
        if (inVariable) throw new TemplateError(source, "a variable must not contain another variable");
        const close = body.indexOf("}", i);
        if (close < 0) throw new TemplateError(source, `unclosed "{" at ${i + 1}`);
        const inner = body.slice(i + 1, close);
        const eq = inner.indexOf("=");
        const fieldPath = eq < 0 ? inner : inner.slice(0, eq);
        if (!fieldPath.split(".").every((part) => identifier.test(part))) {
          throw new TemplateError(source, `"${fieldPath}" is not a field path (IDENT { "." IDENT })`);
        }
        if (variables.some((v) => v.fieldPath === fieldPath)) throw new TemplateError(source, `field "${fieldPath}" is bound twice`);
        const start = segments.length;
        if (eq < 0) {
          segments.push({ kind: "single" });
          i = close + 1;
        } else {
          i += 1 + eq + 1;
          if (i === close) throw new TemplateError(source, `variable "${fieldPath}" has an empty template after "="`);
          readSegments(true);
          if (body[i] !== "}") throw new TemplateError(source, `expected "}" at ${i + 1}`);
          i++;
        }
        const end = segments.length;
        variables.push({ fieldPath, start, end, singleSegment: end - start === 1 && segments[start].kind === "single" });
      } else {
        while (j < body.length && !stop.includes(body[j])) j++;
        const text = body.slice(i, j);
        if (text === "") throw new TemplateError(source, `empty segment at ${i + 1}`);
        if (text === "*") segments.push({ kind: "single" });
        else if (text === "**") segments.push({ kind: "multi" });
        else if (/[{}*=]/.test(text)) throw new TemplateError(source, `"${text}" is not a literal segment`);
        else segments.push({ kind: "literal", value: decodeLiteral(source, text) });
        i = j;
      }
      if (i >= body.length || body[i] !== "/") return;
      i++;
    }
  };
  readSegments(false);
  if (i !== body.length) throw new TemplateError(source, `unexpected "${body[i]}" at ${i + 1}`);
  const multi = segments.findIndex((s) => s.kind === "multi");
  if (multi >= 0 && multi !== segments.length - 1) {
    throw new TemplateError(source, '"**" must be the last segment (before the verb)');
  }
  const shape =
    "/" +
    segments.map((s) => (s.kind === "literal" ? escapeShape(s.value) : s.kind === "single" ? "*" : "**")).join("/") +
    (verb === undefined ? "" : ":" + verb);
  return { source, segments, variables, verb, shape };
}

function decodeLiteral(source: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new TemplateError(source, `literal "${text}" is not valid percent-encoding`);
  }
}

/** Literals that look like wildcards must not share a shape with them. */
function escapeShape(literal: string): string {
  return literal === "*" || literal === "**" ? encodeURIComponent(literal).replace(/\*/g, "%2A") : literal.replace(/\//g, "%2F");
}

/**
 * Matches a request path (raw: percent-encoded, no query) against
 * `template`; returns the variables' bindings, or undefined when the path
 * does not match. Decoding follows http.proto: a single-segment variable is
 * fully decoded; a multi-segment one keeps `%2F`/`%2f` encoded.
 */
export function matchTemplate(template: ParsedTemplate, path: string): PathBinding[] | undefined {
  if (path.charCodeAt(0) !== 47 /* "/" */) return undefined;
  let rest = path.slice(1);
  if (template.verb !== undefined) {
    const suffix = ":" + template.verb;
    if (!rest.endsWith(suffix)) return undefined;
    rest = rest.slice(0, rest.length - suffix.length);
  }
  const parts = rest === "" ? [] : rest.split("/");
  const { segments } = template;
  const last = segments.length - 1;
  const multi = last >= 0 && segments[last].kind === "multi";
  if (multi ? parts.length < last : parts.length !== segments.length) return undefined;
  for (let k = 0; k < segments.length; k++) {
    const segment = segments[k];
    if (segment.kind === "multi") break;
    const part = parts[k];
    if (part === "") return undefined;
    if (segment.kind === "literal") {
      const decoded = safeDecode(part);
      if (decoded !== segment.value) return undefined;
    }
  }
  // A "**" matches zero or more segments, but never empty ones ("a//b").
  if (multi) for (let k = last; k < parts.length; k++) if (parts[k] === "") return undefined;
  const bindings: PathBinding[] = [];
  for (const variable of template.variables) {
    const end = multi && variable.end === segments.length ? parts.length : variable.end;
    const raw = parts.slice(variable.start, end).join("/");
    const value = variable.singleSegment ? safeDecode(raw) : decodeKeepingSlashes(raw);
    if (value === undefined) return undefined;
    bindings.push({ fieldPath: variable.fieldPath, value });
  }
  return bindings;
}

function safeDecode(text: string): string | undefined {
  if (!text.includes("%")) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** Percent-decodes everything except an encoded "/", which stays `%2F`/`%2f` as the client wrote it. */
function decodeKeepingSlashes(text: string): string | undefined {
  if (!text.includes("%")) return text;
  const pieces = text.split(/(%2[Ff])/);
  let out = "";
  for (let k = 0; k < pieces.length; k++) {
    if (k % 2 === 1) {
      out += pieces[k];
      continue;
    }
    const decoded = safeDecode(pieces[k]);
    if (decoded === undefined) return undefined;
    out += decoded;
  }
  return out;
}
