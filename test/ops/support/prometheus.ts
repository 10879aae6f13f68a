import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { PROJECT_ROOT } from '../../support/cli.ts';
import { type Child, freePort, spawnChild, tail } from '../../support/processes.ts';

export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';
export const ALERT_RULES = join(PROJECT_ROOT, 'deploy/prometheus/alerts.yml');
const READY_WITHIN_MS = 30_000;

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface Alert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

/** A real Prometheus of the test's own: temp config and storage, a free loopback port. */
export interface PrometheusServer {
  url: string;
  process: Child;
  query(expr: string): Promise<Sample[]>;
  alerts(): Promise<Alert[]>;
  stop(): Promise<void>;
}

interface RuleFile {
  groups: {
    name: string;
    rules: { alert: string; expr: string; for?: string; annotations: Record<string, string> }[];
  }[];
}

export async function readAlertRules(): Promise<RuleFile> {
  return parse(await readFile(ALERT_RULES, 'utf8')) as RuleFile;
}

/**
 * The alert rules with their time scales shrunk for a test that lasts seconds: every `for:`
 * becomes `holdFor` and every range selector `[...]` becomes `range`; thresholds stay as written.
 */
export async function rulesForTest(holdFor: string, range: string): Promise<string> {
  const rules = await readAlertRules();
  for (const group of rules.groups) {
    for (const rule of group.rules) {
      rule.expr = rule.expr.replace(/\[\d+[smhd]\]/g, `[${range}]`);
      if (rule.for) rule.for = holdFor;
    }
  }
  return stringify(rules);
}

/**
 * Starts Prometheus scraping `targets` (job name → host:port list) every second and evaluating
 * `rules` every second; resolves once it answers ready.
 */
export async function startPrometheus(
  targets: Record<string, string[]>,
  rules: string,
): Promise<PrometheusServer> {
  const directory = await mkdtemp(join(tmpdir(), 'clerk-sync-prometheus-'));
  await writeFile(join(directory, 'rules.yml'), rules);
  await writeFile(
    join(directory, 'prometheus.yml'),
    stringify({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: ['rules.yml'],
      scrape_configs: Object.entries(targets).map(([job, addresses]) => ({
        job_name: job,
        static_configs: [{ targets: addresses }],
      })),
    }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawnChild('prometheus', PROMETHEUS, [
    `--config.file=${join(directory, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(directory, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ]);
  const api = async <T>(path: string): Promise<T> => {
    const response = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(5_000) });
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.error}`);
    return body.data;
  };
  const server: PrometheusServer = {
    url,
    process: child,
    query: async (expr) =>
      (await api<{ result: Sample[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    alerts: async () => (await api<{ alerts: Alert[] }>('/api/v1/alerts')).alerts,
    async stop() {
      await child.stop('SIGTERM');
      await rm(directory, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + READY_WITHIN_MS;
  for (;;) {
    if (!child.isRunning()) throw new Error(`prometheus exited\n${tail(child)}`);
    const ready = await fetch(`${url}/-/ready`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) return server;
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`prometheus not ready within ${READY_WITHIN_MS} ms\n${tail(child)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
