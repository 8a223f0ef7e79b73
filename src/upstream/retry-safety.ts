/**
 * When a failed stream provably never reached the upstream application, so
 * that sending the call again (elsewhere) cannot run it twice. What
 * node:http2 (v20) reports in each case, pinned by
 * test/integration/upstream-retry-safety.test.ts:
 *
 * - The connection failed before the stream was sent (refused, TLS error,
 *   connect timeout): the stream never got an id (`stream.id` undefined,
 *   `pending` true) and errors with ERR_HTTP2_STREAM_CANCEL.
 * - The server refused the stream (RST_STREAM REFUSED_STREAM), or sent a
 *   graceful GOAWAY (NO_ERROR) whose last-stream-id is below the stream's:
 *   nghttp2 closes such streams with `rstCode` 7 (REFUSED_STREAM) in both.
 * - A GOAWAY with an error code closes every stream with that code, whether
 *   the server processed it or not; only the GOAWAY's last-stream-id tells
 *   them apart, so connections record it here.
 */
import * as http2 from "node:http2";

const { NGHTTP2_REFUSED_STREAM } = http2.constants;

/** Last-stream-id of the GOAWAY each connection received, if any. */
const goawayLastStreamId = new WeakMap<http2.Http2Session, number>();

/** Called by a connection when its peer sends GOAWAY. */
export function recordGoaway(session: http2.Http2Session, lastStreamId: number): void {
  const previous = goawayLastStreamId.get(session);
  // A server may send GOAWAY twice (graceful, then final); the lower id wins.
  goawayLastStreamId.set(session, previous === undefined ? lastStreamId : Math.min(previous, lastStreamId));
}

/**
 * Whether `stream`, now closed without any response, was never seen by the
 * application on the other side.
 *
 * @param session the connection the stream was on (`stream.session` is gone once it closed).
 */
export function neverReachedApplication(stream: http2.ClientHttp2Stream, session: http2.Http2Session | undefined): boolean {
  const id = stream.id;
  if (id === undefined) return true;
  if (stream.rstCode === NGHTTP2_REFUSED_STREAM) return true;
  const last = session === undefined ? undefined : goawayLastStreamId.get(session);
  return last !== undefined && id > last;
}
