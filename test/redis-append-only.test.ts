import { describe, expect, it } from 'vitest';
import { DURABILITY_CHECK_INTERVAL_MS } from '../src/redis.ts';
import { useTestDatabase } from './support/hooks.ts';
import { metricsText } from './support/http.ts';
import { type Delivery, newUsers, send } from './support/load.ts';
import { capturingLogger } from './support/logs.ts';
import { useReceiverOnPrivateRedis } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

const db = useTestDatabase({ migrate: false });
const logs = capturingLogger();
const { redis, admin, receiver, queue } = useReceiverOnPrivateRedis(
  db,
  ['--appendonly', 'no'],
  logs.log,
);

const warnings = (pattern: RegExp) =>
  logs.records().filter((record) => record.level === 40 && pattern.test(String(record.msg)));
const NO_FILE = /^Redis writes no append-only file \(appendonly no\)/;
const metric = async (name: string) =>
  new RegExp(`^${name} (\\d+)$`, 'm').exec(await metricsText(receiver.metricsUrl))?.[1];
const appendOnlyMetric = () => metric('clerk_sync_redis_append_only');
const dataLost = () =>
  logs
    .records()
    .filter((record) => record.level === 50 && /^Redis lost its data/.test(String(record.msg)));

describe('a Redis that writes no append-only file, whose restart loses what it queued since its last snapshot', () => {
  it('is warned about once and reported as clerk_sync_redis_append_only 0; deliveries are still accepted', async () => {
    const [delivery] = newUsers(1, new Set());
    expect((await send(receiver.url, delivery as Delivery)).status).toBe(202);
    // Read again every few seconds, and still one warning.
    await new Promise((resolve) => setTimeout(resolve, 2 * DURABILITY_CHECK_INTERVAL_MS));
    expect(warnings(NO_FILE)).toHaveLength(1);
    expect(await appendOnlyMetric()).toBe('0');
  });

  it('loses the queue when it restarts, which is reported once as lost data, with what to do', async () => {
    expect(await queue.count()).toBe(1);
    expect(dataLost()).toEqual([]);
    await redis.kill();
    await redis.restart();
    await waitFor(
      async () => dataLost().length > 0,
      3 * DURABILITY_CHECK_INTERVAL_MS,
      'the loss reported',
    );
    expect(await queue.count()).toBe(0);
    expect(dataLost()).toEqual([
      expect.objectContaining({
        msg: expect.stringContaining('run npm run reconcile -- --apply'),
      }),
    ]);
    expect(await metric('clerk_sync_redis_data_lost_total')).toBe('1');
    // Checked again every few seconds, and the marker written anew: reported once.
    await new Promise((resolve) => setTimeout(resolve, 2 * DURABILITY_CHECK_INTERVAL_MS));
    expect(dataLost()).toHaveLength(1);
  });

  it('is reported as 1 once appendonly is set while the receiver runs, with a warning that it ended', async () => {
    await admin.config('SET', 'appendonly', 'yes');
    await waitFor(
      async () => (await appendOnlyMetric()) === '1',
      3 * DURABILITY_CHECK_INTERVAL_MS,
      'clerk_sync_redis_append_only 1',
    );
    expect(warnings(/^Redis writes an append-only file again$/)).toHaveLength(1);
    expect(warnings(NO_FILE)).toHaveLength(1);
  });
});
