/**
 * The shape every client protocol has, like vanguard-go's client-side
 * protocol handlers: a request is classified once (src/inbound/classify.ts),
 * then its protocol either starts the call or refuses it in its own form.
 */
import type { CallEnd, ClientProtocolName } from "../call.js";
import type { BridgeContext, Exchange } from "./exchange.js";

/** What classification found in a request's method, Content-Type and HTTP version. */
export interface ClassifiedRequest {
  readonly protocol: ClientProtocol;
  /** Codec the Content-Type names, lower case ("proto" when it names none); "" for GET and unrecognised requests. */
  readonly codec: string;
  /** gRPC-Web text mode (base64 both ways). */
  readonly text: boolean;
}

export interface ClientProtocol {
  /** The protocol, or undefined for a request no protocol recognises. */
  readonly name: ClientProtocolName | undefined;
  /** Starts the call of a request this protocol classified, once routing accepted it. */
  start(ctx: BridgeContext, exchange: Exchange, request: ClassifiedRequest, rawQuery: string): void;
  /**
   * Answers with `end` (an error end, from `refusedCall`), touching no
   * upstream. `end.http` asks for an HTTP status and headers of its own
   * (405 with Allow, 415 with Accept-Post); `end.unknownProcedure` for the
   * answer to a procedure nobody serves.
   */
  refuse(exchange: Exchange, request: ClassifiedRequest, end: CallEnd): void;
}
