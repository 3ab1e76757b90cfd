// Turns the Grafana dashboard's queries into a Prometheus rule file (one recording rule per
// query), so that `promtool check rules` parses every one of them as PromQL. Grafana's
// variables are replaced by values PromQL accepts.
//   node .ci/dashboard-rules.mjs ops/grafana-dashboard.json > dashboard-rules.yml
import { readFileSync } from 'node:fs';

const dash = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const rules = [];
for (const p of dash.panels ?? []) {
  for (const t of p.targets ?? []) {
    const expr = t.expr.replaceAll('$__rate_interval', '5m').replaceAll('$account', '.*');
    rules.push(`      - record: dashboard:panel${p.id}:${t.refId}\n        expr: ${JSON.stringify(expr)}`);
  }
}
if (rules.length === 0) throw new Error('the dashboard has no queries');
console.log(`groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}`);
