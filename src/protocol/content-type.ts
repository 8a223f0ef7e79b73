/**
 * Content types of the Connect protocol and their gRPC counterparts. Codecs
 * other than proto and json pass through by name (`application/connect+cbor`
 * becomes `application/grpc+cbor`), because the bridge never decodes messages.
 */

export interface ConnectContentType {
  /** `application/connect+<codec>` (streaming) rather than `application/<codec>`. */
  stream: boolean;
  /** Codec name, lower case: "proto", "json", ... */
  codec: string;
}

// Connect sends `application/json; charset=utf-8` for JSON; any other
// parameter, or a charset other than UTF-8, is not a Connect content type.
const connectContentType =
  /^application\/(connect\+)?([a-z0-9][a-z0-9.+-]*?)(?:\s*;\s*charset\s*=\s*"?utf-?8"?)?$/i;

/** Parses a Connect Content-Type; undefined if it is not one. */
export function parseConnectContentType(value: string | undefined): ConnectContentType | undefined {
  if (value === undefined) return undefined;
  const match = connectContentType.exec(value);
  if (match === null) return undefined;
  const codec = match[2].toLowerCase();
  // gRPC and gRPC-Web requests are other protocols, not Connect codecs.
  if (codec.startsWith("grpc") || codec.startsWith("connect")) return undefined;
  return { stream: match[1] !== undefined, codec };
}

/** The Content-Type a Connect response carries for a codec. */
export function connectContentTypeFor(stream: boolean, codec: string): string {
  return stream ? `application/connect+${codec}` : `application/${codec}`;
}

/** The Content-Type of the gRPC request sent upstream for a codec. */
export function grpcContentTypeFor(codec: string): string {
  // Plain application/grpc means proto to every gRPC server; a few reject
  // the explicit +proto form.
  return codec === "proto" ? "application/grpc" : `application/grpc+${codec}`;
}

/**
 * Checks the Content-Type of a gRPC response: undefined if it carries the
 * expected codec, otherwise a description of what is wrong.
 */
export function checkGrpcResponseContentType(value: string | undefined, codec: string): string | undefined {
  if (value === undefined) return "upstream response has no content-type";
  const lower = value.toLowerCase();
  if (!lower.startsWith("application/grpc")) {
    return `upstream response has content-type "${value}", not application/grpc`;
  }
  const rest = lower.slice("application/grpc".length);
  if (rest === "" || rest.startsWith(";")) return undefined; // bare: proto or the request's codec
  const responseCodec = rest.startsWith("+") ? rest.slice(1).split(";")[0].trim() : undefined;
  if (responseCodec === codec) return undefined;
  if (responseCodec === undefined || responseCodec.startsWith("web")) {
    return `upstream response has content-type "${value}", not application/grpc`;
  }
  return `upstream answered a ${codec} request with codec ${responseCodec}`;
}

export interface GrpcWebContentType {
  /** `application/grpc-web-text`: the byte stream is base64 in both directions. */
  text: boolean;
  /** Codec name, lower case: "proto" when the type names none. */
  codec: string;
}

const grpcWebContentType = /^application\/grpc-web(-text)?(?:\+([a-z0-9][a-z0-9.+-]*))?\s*(?:;.*)?$/i;

/** Parses a gRPC-Web Content-Type; undefined if it is not one. */
export function parseGrpcWebContentType(value: string | undefined): GrpcWebContentType | undefined {
  if (value === undefined) return undefined;
  const match = grpcWebContentType.exec(value);
  if (match === null) return undefined;
  return { text: match[1] !== undefined, codec: (match[2] ?? "proto").toLowerCase() };
}

/** The Content-Type of a gRPC-Web response in the request's format. */
export function grpcWebContentTypeFor(type: GrpcWebContentType): string {
  return `application/grpc-web${type.text ? "-text" : ""}+${type.codec}`;
}

const grpcContentType = /^application\/grpc(?:\+([a-z0-9][a-z0-9.+-]*))?\s*(?:;.*)?$/i;

/** The codec of a native gRPC Content-Type ("proto" when none is named); undefined if it is not one. */
export function parseGrpcContentType(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const match = grpcContentType.exec(value);
  if (match === null) return undefined;
  return (match[1] ?? "proto").toLowerCase();
}
