// Parses PromQL expressions with Prometheus's own grammar (@prometheus-io/lezer-promql,
// the one its web UI uses): reads a JSON array of strings on stdin, writes a JSON array
// of the same length on stdout, each entry null (parsed) or where the first error is.
// Run by tests/unit/deploy/test_alerts_and_dashboard.py, with node and the package from
// services/web/node_modules (make setup: npm ci).
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(process.env.REBOND_NODE_MODULES + "/");
const { parser } = require("@prometheus-io/lezer-promql");

const exprs = JSON.parse(readFileSync(0, "utf8"));
const results = exprs.map((expr) => {
  let error = null;
  parser.parse(expr).iterate({
    enter(node) {
      if (error === null && node.type.isError) {
        error = `syntax error at ${node.from}: …${expr.slice(Math.max(0, node.from - 20), node.from + 20)}…`;
      }
    },
  });
  return error;
});
process.stdout.write(JSON.stringify(results));
