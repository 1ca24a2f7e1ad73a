// Validates recorded requests and responses against contextd's OpenAPI document with Ajv
// (JSON Schema 2020-12, what OpenAPI 3.1 uses). Run by tests/integration/openapi_test.cc:
//   node openapi_validate.mjs SPEC.json RECORDS.json
// RECORDS: [{method, pattern, request (JSON or null), status, response (JSON)}]. Prints one
// line per failure and exits 1 if there is any.
import { readFileSync } from "node:fs";

import Ajv2020 from "ajv/dist/2020.js";

const [specPath, recordsPath] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(specPath, "utf8"));
const records = JSON.parse(readFileSync(recordsPath, "utf8"));
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema({ ...spec, $id: "https://contextd/openapi.json" });

const pointer = (...parts) =>
  "https://contextd/openapi.json#/" +
  parts.map((p) => encodeURIComponent(String(p).replaceAll("~", "~0").replaceAll("/", "~1"))).join("/");

let failures = 0;
let checked = 0;
for (const r of records) {
  const op = spec.paths[r.pattern]?.[r.method.toLowerCase()];
  const where = `${r.method} ${r.pattern} (${r.status})`;
  if (!op) {
    console.log(`${where}: no operation in the document`);
    failures++;
    continue;
  }
  const method = r.method.toLowerCase();
  if (r.request !== null && op.requestBody) {
    const validate = ajv.getSchema(pointer("paths", r.pattern, method, "requestBody", "content", "application/json", "schema"));
    if (!validate(r.request)) {
      console.log(`${where} request: ${ajv.errorsText(validate.errors)}`);
      failures++;
    }
    checked++;
  }
  const code = op.responses[String(r.status)] ? String(r.status) : "default";
  const content = op.responses[code]?.content?.["application/json"];
  if (!content) {
    console.log(`${where}: no JSON response ${r.status} or default in the document`);
    failures++;
    continue;
  }
  const validate = ajv.getSchema(pointer("paths", r.pattern, method, "responses", code, "content", "application/json", "schema"));
  if (!validate(r.response)) {
    console.log(`${where} response: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(r.response).slice(0, 300)}`);
    failures++;
  }
  checked++;
}
console.log(`checked ${checked} bodies of ${records.length} exchanges, ${failures} failures`);
process.exit(failures > 0 ? 1 : 0);
