import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sampleUserEvent } from '../../src/clerk/sample-events.ts';
import { PROJECT_ROOT } from '../support/cli.ts';
import { useStarted } from '../support/hooks.ts';
import type { ServiceProcess } from '../support/services.ts';
import { expectExactlyStored, useRunningStack } from '../support/stack.ts';
import { deliver, OLD_SECRET } from '../support/svix.ts';
import { waitFor } from '../support/wait.ts';
import { rulesForTest, startPrometheus } from './support/prometheus.ts';

const BACKLOG_ALERT = 'ClerkSyncBacklogGrowing';
/** The range of every rule here: a few scrapes at Prometheus's 1 s interval. */
const RULE_RANGE = '15s';
/** The range of every panel query here (Grafana's $__rate_interval): the whole test so far. */
const PANEL_RANGE = '2m';
const DASHBOARD = join(PROJECT_ROOT, 'deploy/grafana/clerk-sync.json');

interface Panel {
  title: string;
  targets: { expr: string }[];
}

const { stack, receiver, worker, users, sendNewUsers } = useRunningStack();
const address = (service: ServiceProcess) => new URL(service.url).host;
const prometheus = useStarted(
  async () =>
    startPrometheus(
      { receiver: [address(receiver)], worker: [address(worker)] },
      await rulesForTest('4s', RULE_RANGE),
    ),
  (started) => started.stop(),
);

async function backlogAlertState(): Promise<string> {
  const alert = (await prometheus.alerts()).find((a) => a.labels.alertname === BACKLOG_ALERT);
  return alert?.state ?? 'inactive';
}

describe('a real Prometheus scraping a real receiver and worker', () => {
  it("every Grafana panel's query returns data", async () => {
    await waitFor(
      async () => (await prometheus.query('up == 1')).length === 2,
      30_000,
      'Prometheus to scrape the receiver and the worker',
    );
    await sendNewUsers(40);
    // A payload that can never succeed (fails for good), a user with no email address, and a
    // delivery signed with a secret the receiver does not have.
    const malformed = sampleUserEvent('user.created');
    expect((await deliver(receiver.url, { ...malformed, data: {} })).status).toBe(202);
    const phoneOnly = sampleUserEvent('user.created', { email: null });
    expect((await deliver(receiver.url, phoneOnly)).status).toBe(202);
    const rejected = await deliver(receiver.url, sampleUserEvent('user.created'), {
      secret: OLD_SECRET,
    });
    expect(rejected.status).toBeGreaterThanOrEqual(400);
    await stack.waitUntilDrained(users.size, 30_000);

    const panels = (JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] }).panels;
    for (const panel of panels) {
      for (const { expr } of panel.targets) {
        const query = expr.replaceAll('$__rate_interval', PANEL_RANGE);
        await waitFor(
          async () =>
            (await prometheus.query(query)).some((sample) =>
              Number.isFinite(Number(sample.value[1])),
            ),
          30_000,
          `data for panel "${panel.title}": ${query}`,
        );
      }
    }
    const receiptToCommit = await prometheus.query(
      `histogram_quantile(0.99, sum by (le) (rate(clerk_sync_receipt_to_commit_seconds_bucket[${PANEL_RANGE}])))`,
    );
    expect(Number(receiptToCommit[0]?.value[1])).toBeGreaterThan(0);
    expect(await prometheus.query('clerk_sync_queue_workers == 1')).toHaveLength(1);
  });

  it('the backlog alert goes pending then firing with the worker stopped, and resolves once a worker drains the queue', async () => {
    expect(await worker.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    await waitFor(
      async () => (await prometheus.query('clerk_sync_queue_workers == 0')).length === 1,
      30_000,
      'Prometheus to see no worker',
    );
    expect(await backlogAlertState()).toBe('inactive');

    // Deliveries keep coming while no worker takes them: the backlog grows past the threshold.
    let sending = true;
    const trickle = (async () => {
      while (sending) {
        await sendNewUsers(15);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();
    const states = new Set<string>();
    try {
      await waitFor(
        async () => {
          states.add(await backlogAlertState());
          return states.has('firing');
        },
        90_000,
        `${BACKLOG_ALERT} firing`,
      );
    } finally {
      sending = false;
      await trickle;
    }
    expect(states).toContain('pending');
    const [oldest] = await prometheus.query('max(clerk_sync_queue_oldest_waiting_seconds)');
    expect(Number(oldest?.value[1])).toBeGreaterThan(1);

    await stack.startWorker();
    await stack.waitUntilDrained(users.size, 60_000);
    await waitFor(
      async () => (await backlogAlertState()) === 'inactive',
      60_000,
      `${BACKLOG_ALERT} resolved`,
    );
    // The alert resolves below its threshold; a scrape after the drain sees nothing waiting.
    await waitFor(
      async () => {
        const [oldestAfter] = await prometheus.query(
          'max(clerk_sync_queue_oldest_waiting_seconds)',
        );
        return Number(oldestAfter?.value[1]) === 0;
      },
      30_000,
      'Prometheus to see no job waiting',
    );
    await expectExactlyStored(stack.db, users);
  });
});
