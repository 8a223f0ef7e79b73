/**
 * Whether a call to gRPC server reflection may reach the upstream. One small
 * function so that routing can later decide it per route. It takes the
 * option's value, not the options: schema/ stays free of options.ts, which
 * imports schema/ itself.
 */

/** True when `procedure` (`package.Service/Method`) is server reflection and `passthrough` is off. */
export function reflectionRefused(passthrough: boolean, procedure: string): boolean {
  // First character first: every other call pays one comparison.
  return (
    procedure.charCodeAt(0) === 103 /* "g" */ &&
    !passthrough &&
    (procedure.startsWith("grpc.reflection.v1.ServerReflection/") || procedure.startsWith("grpc.reflection.v1alpha.ServerReflection/"))
  );
}
