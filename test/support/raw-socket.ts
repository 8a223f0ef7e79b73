/**
 * HTTP/1.1 over a bare TCP socket, for requests fetch and node:http refuse to
 * send (CR/LF or non-ASCII in header values, thousands of headers, bodies cut
 * or stalled mid-message) and for seeing exactly how the server answers them.
 */
import * as net from "node:net";

export interface ParsedResponse {
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The body, de-chunked when Transfer-Encoding is chunked. */
  body: Buffer;
  /** Bytes of the message on the wire, head included. */
  wireLength: number;
}

/**
 * One step of a raw exchange: bytes to write, a pause, the client leaving, or
 * waiting for an event: everything written so far handed to the kernel
 * (`flushed`), a promise (`until`; a function is called when the step is
 * reached), or bytes from the server that satisfy
 * `received`.
 */
export type RawStep =
  | Buffer
  | string
  | { delayMs: number }
  | { destroy: true }
  | { end: true }
  | { flushed: true }
  | { until: Promise<unknown> | (() => Promise<unknown>) }
  | { received: (bytes: Buffer) => boolean };

export interface RawOutcome {
  /** The first complete response, if one arrived. */
  response?: ParsedResponse;
  /** Everything the server sent. */
  bytes: Buffer;
  /** The server closed (or reset) the connection before we gave up. */
  serverClosed: boolean;
  /** Nothing complete arrived and the server kept the connection open until the timeout. */
  timedOut: boolean;
  /** ms from the first write to the outcome. */
  elapsedMs: number;
  /** More than `maxBytes` arrived and we stopped reading. */
  overflowed: boolean;
  /** The connection was reset (ECONNRESET/EPIPE), which discards unread bytes. */
  reset: boolean;
}

export interface RawOptions {
  /** Give up after this long (default 3000 ms). */
  timeoutMs?: number;
  /** Keep reading after a complete response until the server closes or the timeout. */
  waitForClose?: boolean;
  /** Stop reading (and close) once this many bytes have arrived. Default: no limit. */
  maxBytes?: number;
}

/**
 * Parses the first HTTP/1.1 response in `bytes`; undefined while incomplete.
 * `eof` says the server closed, which completes a body without a length.
 */
export function parseResponse(bytes: Buffer, eof = false): ParsedResponse | undefined {
  let start = 0;
  for (;;) {
    const headEnd = bytes.indexOf("\r\n\r\n", start);
    if (headEnd < 0) return undefined;
    const lines = bytes.subarray(start, headEnd).toString("latin1").split("\r\n");
    const statusMatch = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (statusMatch === null) throw new Error(`not an HTTP response: ${JSON.stringify(lines[0])}`);
    const status = Number(statusMatch[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    let pos = headEnd + 4;
    if (status >= 100 && status < 200) {
      start = pos; // 100 Continue and friends: the real response follows
      continue;
    }
    if (headers["transfer-encoding"]?.toLowerCase().includes("chunked")) {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = bytes.indexOf("\r\n", pos);
        if (lineEnd < 0) return undefined;
        const size = parseInt(bytes.subarray(pos, lineEnd).toString("latin1"), 16);
        if (!Number.isFinite(size)) throw new Error("bad chunk size");
        pos = lineEnd + 2;
        if (size === 0) {
          // Trailer section, then an empty line.
          const end = bytes.indexOf("\r\n", pos);
          if (end < 0) return undefined;
          if (end === pos) return { status, headers, body: Buffer.concat(parts), wireLength: end + 2 };
          const trailersEnd = bytes.indexOf("\r\n\r\n", pos);
          if (trailersEnd < 0) return undefined;
          return { status, headers, body: Buffer.concat(parts), wireLength: trailersEnd + 4 };
        }
        if (bytes.byteLength < pos + size + 2) return undefined;
        parts.push(bytes.subarray(pos, pos + size));
        pos += size + 2;
      }
    }
    if (headers["content-length"] !== undefined) {
      const length = Number(headers["content-length"]);
      if (bytes.byteLength < pos + length) return undefined;
      return { status, headers, body: bytes.subarray(pos, pos + length), wireLength: pos + length };
    }
    if (status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0), wireLength: pos };
    return eof ? { status, headers, body: bytes.subarray(pos), wireLength: bytes.byteLength } : undefined;
  }
}

/** Opens a TCP connection to 127.0.0.1:port, plays the steps, and reports what came back. */
export function rawExchange(port: number, steps: RawStep[], options: RawOptions = {}): Promise<RawOutcome> {
  const timeoutMs = options.timeoutMs ?? 3000;
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    const started = Date.now();
    let settled = false;
    let serverClosed = false;
    let clientGone = false;
    let received = 0;
    let overflowed = false;
    let reset = false;
    const settle = (timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const bytes = Buffer.concat(chunks);
      let response: ParsedResponse | undefined;
      try {
        response = parseResponse(bytes, serverClosed);
      } catch {
        response = undefined;
      }
      socket.destroy();
      resolve({
        response,
        bytes,
        serverClosed,
        timedOut: timedOut && response === undefined,
        elapsedMs: Date.now() - started,
        overflowed,
        reset,
      });
    };
    const timer = setTimeout(() => settle(true), timeoutMs);
    let lastWrite: Promise<unknown> = Promise.resolve();
    let onBytes: (() => void) | undefined;
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.byteLength;
      onBytes?.();
      if (options.maxBytes !== undefined && received > options.maxBytes) {
        overflowed = true;
        clientGone = true;
        settle(false);
        return;
      }
      if (options.waitForClose) return;
      try {
        if (parseResponse(Buffer.concat(chunks)) !== undefined) settle(false);
      } catch {
        settle(false);
      }
    });
    const onClosed = () => {
      if (!clientGone) serverClosed = true;
      settle(false);
    };
    socket.on("end", onClosed);
    socket.on("close", onClosed);
    socket.on("error", (error: NodeJS.ErrnoException) => {
      // Reported through close; a reset also discards what we had not read yet.
      if (error.code === "ECONNRESET" || error.code === "EPIPE") reset = true;
    });
    socket.once("connect", async () => {
      for (const step of steps) {
        if (settled || socket.destroyed) return;
        if (typeof step === "string" || Buffer.isBuffer(step)) {
          lastWrite = new Promise((resolve) => socket.write(step, resolve));
        } else if ("flushed" in step) {
          await lastWrite;
        } else if ("until" in step) {
          await (typeof step.until === "function" ? step.until() : step.until);
        } else if ("received" in step) {
          const test = step.received;
          await new Promise<void>((resolve) => {
            const check = () => {
              if (!test(Buffer.concat(chunks)) && !settled) return;
              onBytes = undefined;
              resolve();
            };
            onBytes = check;
            check();
          });
        } else if ("delayMs" in step) {
          await new Promise((r) => setTimeout(r, step.delayMs));
        } else if ("destroy" in step) {
          clientGone = true;
          socket.destroy();
          settle(false);
          return;
        } else {
          socket.end();
        }
      }
    });
  });
}

/** A request head: request line, the given headers (in order, repeats allowed), blank line. */
export function requestHead(method: string, path: string, headers: [string, string | Buffer][]): Buffer {
  const parts: Buffer[] = [Buffer.from(`${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n`, "latin1")];
  for (const [name, value] of headers) {
    parts.push(Buffer.from(`${name}: `, "latin1"), typeof value === "string" ? Buffer.from(value, "latin1") : value, Buffer.from("\r\n"));
  }
  parts.push(Buffer.from("\r\n"));
  return Buffer.concat(parts);
}

/** A whole request with Content-Length (and Connection: close unless told otherwise). */
export function rawRequest(
  method: string,
  path: string,
  headers: [string, string | Buffer][],
  body: Buffer = Buffer.alloc(0),
  options: { keepAlive?: boolean; contentLength?: number } = {},
): Buffer {
  const all: [string, string | Buffer][] = [...headers];
  if (!options.keepAlive) all.push(["connection", "close"]);
  if (method !== "GET" || body.byteLength > 0 || options.contentLength !== undefined) {
    all.push(["content-length", String(options.contentLength ?? body.byteLength)]);
  }
  return Buffer.concat([requestHead(method, path, all), body]);
}

/** One chunk of a chunked request body. */
export function chunk(bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from(bytes.byteLength.toString(16) + "\r\n"), bytes, Buffer.from("\r\n")]);
}

/** The last chunk of a chunked request body. */
export const lastChunk = "0\r\n\r\n";
