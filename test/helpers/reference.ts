// Validates response bodies against the schemas of the upstream API description this service is
// wire-compatible with (../shared/reference/1claw-intents-openapi.json), using ajv. OpenAPI 3.0's
// `nullable: true` is turned into a JSON Schema type union so that null is accepted where it says so.
import fs from "node:fs";
import path from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

// A copy of the upstream description (MIT; see test/reference/SOURCE.md) kept in the repo.
const SPEC_PATH = path.resolve(import.meta.dirname, "../reference/1claw-intents-openapi.json");

function convertNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(convertNullable);
  if (!node || typeof node !== "object") return node;
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) if (k !== "nullable" && k !== "example") o[k] = convertNullable(v);
  if ((node as { nullable?: boolean }).nullable === true && typeof o.type === "string") o.type = [o.type, "null"];
  return o;
}

let ajv: Ajv2020 | undefined;
function load(): Ajv2020 {
  if (ajv) return ajv;
  const spec = JSON.parse(fs.readFileSync(SPEC_PATH, "utf8"));
  ajv = new Ajv2020({ strict: false, allErrors: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  const schemas = convertNullable(spec.components.schemas) as Record<string, object>;
  ajv.addSchema({ $id: "ref", components: { schemas } });
  return ajv;
}

/** Throws with ajv's errors when `body` does not match components.schemas[name]. */
export function assertMatchesReference(name: string, body: unknown): void {
  const a = load();
  const validate = a.getSchema(`ref#/components/schemas/${name}`);
  if (!validate) throw new Error(`no reference schema ${name}`);
  if (!validate(body)) {
    throw new Error(`response does not match reference ${name}: ${a.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 2000)}`);
  }
}
