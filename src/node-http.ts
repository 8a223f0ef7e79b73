/**
 * node:http, as its CommonJS module object. Any ESM import of node:http
 * (namespace or named) builds the module's ESM facade, which reads every
 * export once, and reading `WebSocket`, `CloseEvent` or `MessageEvent`
 * loads Node's bundled undici, for classes the bridge never uses: 2.0 MB
 * more live heap for the import alone, 1.2 MB for a listening bridge
 * (Node 24, heap after GC). Every full GC marks the whole live heap, and with
 * 64 KiB messages a full GC comes every hundred calls or so, so that heap
 * costs CPU on each of them. Source files take types with `import type`.
 */
import type * as Http from "node:http";

export const http: typeof Http = process.getBuiltinModule("node:http");
