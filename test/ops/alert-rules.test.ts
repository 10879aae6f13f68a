import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../support/cli.ts';
import { exportedMetricNames, metricNamesIn } from './support/metric-names.ts';
import { ALERT_RULES, PROMTOOL, readAlertRules } from './support/prometheus.ts';

const run = promisify(execFile);
const RULE_TESTS = join(PROJECT_ROOT, 'deploy/prometheus/alerts.test.yml');
const RUNBOOK = join(PROJECT_ROOT, 'docs/runbook.md');
const DASHBOARD = join(PROJECT_ROOT, 'deploy/grafana/clerk-sync.json');

interface RuleTests {
  tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

describe('alert rules (deploy/prometheus/alerts.yml)', () => {
  it('pass promtool check rules', async () => {
    const { stdout } = await run(PROMTOOL, ['check', 'rules', ALERT_RULES]);
    expect(stdout).toContain('SUCCESS');
  });

  it("pass promtool's unit tests (alerts.test.yml)", async () => {
    const result = await run(PROMTOOL, ['test', 'rules', RULE_TESTS]).catch(
      (error: { stdout: string; stderr: string; code: number }) => error,
    );
    expect(`${result.stdout}${result.stderr}`).toContain('SUCCESS');
    expect(`${result.stdout}${result.stderr}`).not.toContain('FAILED');
  });

  it('every alert has a unit test where it fires and one where it must not', async () => {
    const alerts = (await readAlertRules()).groups.flatMap((group) =>
      group.rules.map((r) => r.alert),
    );
    const cases = (parse(readFileSync(RULE_TESTS, 'utf8')) as RuleTests).tests.flatMap(
      (test) => test.alert_rule_test ?? [],
    );
    for (const alert of alerts) {
      const own = cases.filter((c) => c.alertname === alert);
      expect(
        own.some((c) => c.exp_alerts.length > 0),
        `${alert} fires somewhere`,
      ).toBe(true);
      expect(
        own.some((c) => c.exp_alerts.length === 0),
        `${alert} stays quiet somewhere`,
      ).toBe(true);
    }
  });

  it('every alert links a runbook entry that exists', async () => {
    const runbook = readFileSync(RUNBOOK, 'utf8');
    const headings = new Set(
      [...runbook.matchAll(/^## (\S+)$/gm)].map((match) => (match[1] as string).toLowerCase()),
    );
    for (const group of (await readAlertRules()).groups) {
      for (const rule of group.rules) {
        expect(rule.annotations.runbook).toBe(`docs/runbook.md#${rule.alert.toLowerCase()}`);
        expect(headings, `runbook heading for ${rule.alert}`).toContain(rule.alert.toLowerCase());
      }
    }
  });

  it('alerts and the Grafana dashboard name only metrics that the receiver or the worker export', async () => {
    const exported = await exportedMetricNames();
    const rules = (await readAlertRules()).groups.flatMap((group) =>
      group.rules.map((r) => r.expr),
    );
    const panels = (
      JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { targets: { expr: string }[] }[] }
    ).panels.flatMap((panel) => panel.targets.map((target) => target.expr));
    const used = new Set([...rules, ...panels].flatMap(metricNamesIn));
    const unknown = [...used].filter((name) => !exported.has(name));
    expect(unknown).toEqual([]);
  });
});
