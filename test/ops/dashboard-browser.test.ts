import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Queue } from 'bullmq';
import { type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleUserEvent } from '../../src/clerk/sample-events.ts';
import type { ClerkEvent, WebhookJobData } from '../../src/queue/queue.ts';
import { DEFAULT_JOB_OPTIONS } from '../../src/queue/retry-policy.ts';
import { toJobEvent } from '../../src/webhooks/job-event.ts';
import { PROJECT_ROOT } from '../support/cli.ts';
import { countRows } from '../support/database.ts';
import type { ServiceProcess } from '../support/services.ts';
import { useFaultStack } from '../support/stack.ts';
import { newSvixId } from '../support/svix.ts';
import { waitFor } from '../support/wait.ts';

const CHROMIUM = '/usr/bin/chromium';
/** Debian's Chromium, headless, with nothing that reaches the network on its own. */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const CREDENTIALS = { username: 'operator', password: 'dashboard-test-password' };
/** Kept after the run (gitignored), to look at. */
const SCREENSHOT = join(PROJECT_ROOT, 'test-results/ops/dashboard-failed-job.png');
const EMAIL = /[^\s@"'<>]+@[^\s@"'<>]+\.[a-z]{2,}/i;

const stack = useFaultStack();
let receiver: ServiceProcess;
let profile: string;
let browser: BrowserContext;
/** The test's own handle on the stack's queue. */
let queue: Queue<WebhookJobData>;

beforeAll(async () => {
  receiver = await stack.startReceiver({
    DASHBOARD_USERNAME: CREDENTIALS.username,
    DASHBOARD_PASSWORD: CREDENTIALS.password,
  });
  await stack.startWorker();
  const redis = new URL(stack.redis.url);
  queue = new Queue<WebhookJobData>(stack.queueName, {
    connection: { host: redis.hostname, port: Number(redis.port) },
  });
  profile = await mkdtemp(join(tmpdir(), 'clerk-sync-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1400, height: 1000 },
  });
});
afterAll(async () => {
  await browser?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
  await queue?.close();
});

/**
 * A user.created that fails for good while PostgreSQL is unreachable: queued exactly as the
 * receiver queues a delivery, but on its last attempt, so the first failure is final.
 */
async function failWhileDatabaseIsDown(): Promise<{ svixId: string; clerkUserId: string }> {
  const event = sampleUserEvent('user.created');
  const svixId = newSvixId();
  stack.proxy.refuse();
  stack.proxy.cutAll();
  try {
    await queue.add(
      event.type,
      { svixId, receivedAt: Date.now(), event: toJobEvent(event as unknown as ClerkEvent) },
      { ...DEFAULT_JOB_OPTIONS, jobId: svixId, attempts: 1 },
    );
    await waitFor(async () => (await stack.jobCounts()).failed === 1, 60_000, 'the job to fail');
  } finally {
    stack.proxy.accept();
  }
  return { svixId, clerkUserId: event.data.id };
}

/**
 * The dashboard's job actions are icon buttons whose names show only in a tooltip on hover:
 * the one whose tooltip reads `name`.
 */
async function buttonWithTooltip(page: Page, name: string): Promise<Locator> {
  for (const button of await page.locator('button:not([role=tab])').all()) {
    await button.hover();
    const tooltip = page.getByText(name, { exact: true }).filter({ visible: true });
    if (
      await tooltip
        .first()
        .waitFor({ timeout: 1_500 })
        .then(
          () => true,
          () => false,
        )
    )
      return button;
  }
  throw new Error(`no button with the tooltip "${name}"`);
}

describe('the queue dashboard in Chromium', () => {
  it('asks for credentials: 401 without them', async () => {
    const page = await browser.newPage();
    const statuses: number[] = [];
    page.on('response', (response) => statuses.push(response.status()));
    // Chromium, with no credentials to offer, ends the navigation with an auth error.
    await expect(page.goto(`${receiver.url}/admin/queues`)).rejects.toThrow(
      /ERR_INVALID_AUTH_CREDENTIALS/,
    );
    expect(statuses).toEqual([401]);
    await page.close();
  });

  it("shows a failed job's reason without an email address, and Retry stores the user", async () => {
    const { svixId, clerkUserId } = await failWhileDatabaseIsDown();
    const page = await browser.newPage();
    await page.setExtraHTTPHeaders({
      authorization: `Basic ${Buffer.from(`${CREDENTIALS.username}:${CREDENTIALS.password}`).toString('base64')}`,
    });
    const response = await page.goto(
      `${receiver.url}/admin/queues/queue/${encodeURIComponent(stack.queueName)}?status=failed`,
    );
    expect(response?.status()).toBe(200);
    const card = page.locator('li, section, div').filter({ hasText: svixId }).last();
    await card.waitFor({ timeout: 20_000 });

    // The Error tab, open by default on a failed job, shows why it failed: no email address.
    const reason = (await queue.getJob(svixId))?.failedReason ?? '';
    expect(reason).toMatch(/ECONN|connect|timeout/i);
    await page.getByText(reason).first().waitFor({ timeout: 20_000 });
    const errorPanel = page.locator('pre').filter({ hasText: reason }).first();
    expect(await errorPanel.textContent()).not.toMatch(EMAIL);
    // The job itself holds the address (the Data tab shows it), so one could have leaked.
    expect(JSON.stringify((await queue.getJob(svixId))?.data)).toMatch(EMAIL);
    await mkdir(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`dashboard screenshot: ${SCREENSHOT}`);

    expect(await countRows(stack.db, 'users', 'clerk_user_id = ?', [clerkUserId])).toBe(0);
    await (await buttonWithTooltip(page, 'Retry')).click();
    const confirm = page.getByRole('button', { name: /^(confirm|retry|yes|ok)$/i });
    if (
      await confirm
        .first()
        .isVisible({ timeout: 2_000 })
        .catch(() => false)
    ) {
      await confirm.first().click();
    }
    await waitFor(
      async () => (await countRows(stack.db, 'users', 'clerk_user_id = ?', [clerkUserId])) === 1,
      30_000,
      'the retried job to store its user',
    );
    expect(await (await queue.getJob(svixId))?.getState()).toBe('completed');
  });
});
