/**
 * For the OpenAPI tests: protos built with buf as a user would (source info
 * included), and an ajv (draft 2020-12, OpenAPI 3.1's dialect) that
 * validates JSON against a document's component schemas.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import type { FileRegistry } from "@bufbuild/protobuf";
import { loadDescriptorSet } from "../../src/schema/descriptor-set.js";

export const repoRoot = new URL("../../../", import.meta.url).pathname;

/** `buf build DIR` (relative to the repository) into a temporary file, loaded as a registry; the file is removed. */
export async function buildRegistry(dir: string): Promise<FileRegistry> {
  const tmp = mkdtempSync(join(tmpdir(), "bridge-openapi-"));
  try {
    const out = join(tmp, "set.binpb");
    await promisify(execFile)(join(repoRoot, "node_modules/.bin/buf"), ["build", dir, "-o", out], { cwd: repoRoot });
    return loadDescriptorSet(readFileSync(out), 0);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/**
 * A validator per component schema of `schemas` (`#/components/schemas/X`
 * refs resolve inside them), strict: a keyword ajv does not know is an error,
 * so a typo in a generated schema fails the test.
 */
export function componentValidators(schemas: Record<string, unknown>): (name: string) => ValidateFunction {
  // strictRequired is ajv's own lint (a `required` beside no `properties`),
  // which the oneof rule (`not: { anyOf: [{ required: [...] }] }`) trips.
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
  addFormats(ajv);
  // OpenAPI's own formats, which say how a JSON value is read.
  for (const format of ["int32", "uint32", "int64", "uint64", "float", "double", "byte", "binary"]) ajv.addFormat(format, true);
  ajv.addKeyword({ keyword: "components" });
  ajv.addSchema({ $id: "https://openapi.test/document", components: { schemas } });
  return (name) => {
    const validate = ajv.getSchema(`https://openapi.test/document#/components/schemas/${name}`);
    if (validate === undefined) throw new Error(`no component schema ${name}`);
    return validate;
  };
}
