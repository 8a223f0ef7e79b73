/**
 * Content codings the bridge lets through. Compressed messages are passed
 * along untouched: Connect's Content-Encoding / Connect-Content-Encoding and
 * gRPC's grpc-encoding name the same codings, and the per-message flag means
 * the same thing in Connect streaming and gRPC.
 */

/** Encodings a client may use unless the options say otherwise. */
export const defaultEncodings: readonly string[] = ["gzip"];

/** Lower-cased codings from an Accept-Encoding-style list, q-values ignored. */
export function parseEncodingList(value: string | undefined): string[] {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const part of value.split(",")) {
    const [name, ...params] = part.split(";");
    const coding = name.trim().toLowerCase();
    if (coding === "" || params.some((p) => /^\s*q\s*=\s*0(\.0*)?\s*$/.test(p))) continue;
    out.push(coding);
  }
  return out;
}

/** Codings both the client and the bridge accept, for grpc-accept-encoding. */
export function acceptableEncodings(clientAccepts: string | undefined, supported: readonly string[]): string | undefined {
  const both = parseEncodingList(clientAccepts).filter((c) => supported.includes(c));
  return both.length > 0 ? both.join(",") : undefined;
}
