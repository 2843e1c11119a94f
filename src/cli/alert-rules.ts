/** `bun run alert-rules`: prints the Prometheus rules file for spike's alerts (admin/alerts.ts), the ones the dashboard shows. */
import { alertRulesYaml } from '../admin/alerts.ts';
import { parseCommandLine, usageError } from './args.ts';

const USAGE = `usage: bun run alert-rules [> spike-alerts.yml]
  prints the alert rules for Prometheus: the same definitions the dashboard's amber, red and
  "now firing" use, each with its runbook entry in docs/operations.md
  --help   this text`;

const { positionals } = parseCommandLine(Bun.argv.slice(2), {}, USAGE);
if (positionals.length > 0) usageError(`unexpected argument ${positionals[0]}`, USAGE);
process.stdout.write(alertRulesYaml());
