# connect-grpc-bridge as a container: Connect and gRPC-Web clients in front,
# native gRPC servers behind. Build: docker build -t connect-grpc-bridge .
# Run:   docker run -p 8080:8080 connect-grpc-bridge --upstream grpc-server:50051
#        docker run -p 8080:8080 -v $PWD/bridge.yaml:/etc/connect-grpc-bridge/bridge.yaml \
#          connect-grpc-bridge --config /etc/connect-grpc-bridge/bridge.yaml
# The data port is 8080, the admin port (/healthz, /readyz, /metrics) 9901.
# Kubernetes manifests: examples/kubernetes/.

# --- build: every dependency (TypeScript), then the compiled code -----------
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency needs its install script (their binaries come as optional packages).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY gen ./gen
COPY test ./test
COPY examples ./examples
COPY bench ./bench
RUN npx tsc -p tsconfig.json

# --- runtime: production dependencies and dist/src only, as a non-root user --
FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
# The peer dependencies (one copy shared with a host app when embedded) are
# dev dependencies of this package, so --omit=dev leaves them out; the
# process needs them: the exact versions of the lock file, from the build.
COPY --from=build /app/node_modules/@connectrpc/connect ./node_modules/@connectrpc/connect
COPY --from=build /app/node_modules/@bufbuild/protobuf ./node_modules/@bufbuild/protobuf
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/gen/grpc ./dist/gen/grpc
# In a container the bridge listens on every interface; the admin listener
# too (probes come from the kubelet, scrapes from Prometheus). Flags and a
# config file override these.
ENV CONNECT_GRPC_BRIDGE_HOST=0.0.0.0 \
    CONNECT_GRPC_BRIDGE_PORT=8080 \
    CONNECT_GRPC_BRIDGE_ADMIN_HOST=0.0.0.0 \
    CONNECT_GRPC_BRIDGE_ADMIN_PORT=9901
EXPOSE 8080 9901
# The node image's unprivileged user (uid 1000); nothing is written at run time.
USER node
# No curl in the slim image: Node's own fetch asks the admin port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains (see README, Operations: Drain); node is PID 1 here and
# handles it itself, so no init wrapper is needed.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli.js"]
