// CallDrain keeps its open calls in a list threaded through the calls (not
// a Set: see src/drain.ts for the GC cost a long-lived Set had). These
// tests pin the list's bookkeeping: calls ending in any order, a call ended
// twice, and the drain deadline cancelling exactly the calls still open.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CallDrain } from "../../src/drain.js";
import type { CallEnd, CallHandle, CallHead, ResponseSink, StartCall } from "../../src/call.js";
import { Code, ConnectError } from "../../src/protocol/status.js";

const head: CallHead = { protocol: "connect", unary: true, get: false, path: "/a.B/C", codec: "proto", metadata: {} };

/** An upstream that never answers on its own: each call ends when the test says so. */
function heldUpstream() {
  const calls: { sink: ResponseSink; cancelled: ConnectError[]; finish(): void }[] = [];
  const start: StartCall = (_head, sink) => {
    const call = {
      sink,
      cancelled: [] as ConnectError[],
      finish: () => sink.onEnd(end()),
    };
    calls.push(call);
    const handle: CallHandle = {
      write: () => true,
      onDrain: () => {},
      end: () => {},
      cancel: (error) => {
        call.cancelled.push(error);
        sink.onEnd({ ...end(), error });
      },
    };
    return handle;
  };
  return { start, calls };
}

function end(): CallEnd {
  return { trailersOnly: false, messages: 1, midMessage: false, unknownProcedure: false, endpoint: undefined, attempts: 1, retries: undefined };
}

function recordingSink(): ResponseSink & { ends: CallEnd[] } {
  const ends: CallEnd[] = [];
  return { ends, onHeaders: () => {}, onData: () => true, onEnd: (e) => void ends.push(e) };
}

const quiet = () => {};

test("CallDrain: calls ending in any order (middle, newest, oldest) leave no call counted open", async () => {
  const drain = new CallDrain();
  const upstream = heldUpstream();
  const startCall = drain.layer(upstream.start);
  for (let i = 0; i < 3; i++) startCall(head, recordingSink());
  assert.equal(drain.openCalls, 3);
  upstream.calls[1].finish();
  assert.equal(drain.openCalls, 2);
  upstream.calls[2].finish();
  upstream.calls[0].finish();
  assert.equal(drain.openCalls, 0);
  // Nothing open: the drain resolves at once.
  await drain.drain(10_000, quiet);
  drain.stop();
});

test("CallDrain: a call whose end is reported twice is unlinked once (the count does not go below the calls open)", () => {
  const drain = new CallDrain();
  const upstream = heldUpstream();
  const startCall = drain.layer(upstream.start);
  startCall(head, recordingSink());
  startCall(head, recordingSink());
  upstream.calls[0].finish();
  upstream.calls[0].finish();
  assert.equal(drain.openCalls, 1);
  upstream.calls[1].finish();
  assert.equal(drain.openCalls, 0);
});

test("CallDrain: at the deadline exactly the calls still open are cancelled with unavailable, each once", async () => {
  const drain = new CallDrain();
  const upstream = heldUpstream();
  const startCall = drain.layer(upstream.start);
  const sinks = [recordingSink(), recordingSink(), recordingSink(), recordingSink()];
  for (const sink of sinks) startCall(head, sink);
  upstream.calls[2].finish();
  await drain.drain(1, quiet);
  assert.deepEqual(
    upstream.calls.map((call) => call.cancelled.length),
    [1, 1, 0, 1],
  );
  for (const call of [0, 1, 3]) assert.equal(upstream.calls[call].cancelled[0].code, Code.Unavailable);
  assert.deepEqual(
    sinks.map((sink) => sink.ends.length),
    [1, 1, 1, 1],
  );
  assert.equal(drain.openCalls, 0);
  // Past the deadline a new call is refused, not started.
  const late = recordingSink();
  startCall(head, late);
  assert.equal(upstream.calls.length, 4);
  assert.equal(late.ends[0].error?.code, Code.Unavailable);
  drain.stop();
});

test("CallDrain: a layer beneath that throws leaves no call counted open", () => {
  const drain = new CallDrain();
  const startCall = drain.layer(() => {
    throw new ConnectError("boom", Code.Internal);
  });
  assert.throws(() => startCall(head, recordingSink()), /boom/);
  assert.equal(drain.openCalls, 0);
});
