import { describe, expect, it } from 'vitest';
import { SETTINGS_CHECK_INTERVAL_MS } from '../src/redis.ts';
import { useTestDatabase } from './support/hooks.ts';
import { metricsText } from './support/http.ts';
import { type Delivery, newUsers, send } from './support/load.ts';
import { capturingLogger } from './support/logs.ts';
import { useReceiverOnPrivateRedis } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

const db = useTestDatabase({ migrate: false });
const logs = capturingLogger();
const { admin, receiver } = useReceiverOnPrivateRedis(db, ['--appendonly', 'no'], logs.log);

const warnings = (pattern: RegExp) =>
  logs.records().filter((record) => record.level === 40 && pattern.test(String(record.msg)));
const NO_FILE = /^Redis writes no append-only file \(appendonly no\)/;
const appendOnlyMetric = async () =>
  /^clerk_sync_redis_append_only (\d)$/m.exec(await metricsText(receiver.metricsUrl))?.[1];

describe('a Redis that writes no append-only file, whose restart loses what it queued since its last snapshot', () => {
  it('is warned about once and reported as clerk_sync_redis_append_only 0; deliveries are still accepted', async () => {
    const [delivery] = newUsers(1, new Set());
    expect((await send(receiver.url, delivery as Delivery)).status).toBe(202);
    // Read again every few seconds, and still one warning.
    await new Promise((resolve) => setTimeout(resolve, 2 * SETTINGS_CHECK_INTERVAL_MS));
    expect(warnings(NO_FILE)).toHaveLength(1);
    expect(await appendOnlyMetric()).toBe('0');
  });

  it('is reported as 1 once appendonly is set while the receiver runs, with a warning that it ended', async () => {
    await admin.config('SET', 'appendonly', 'yes');
    await waitFor(
      async () => (await appendOnlyMetric()) === '1',
      3 * SETTINGS_CHECK_INTERVAL_MS,
      'clerk_sync_redis_append_only 1',
    );
    expect(warnings(/^Redis writes an append-only file again$/)).toHaveLength(1);
    expect(warnings(NO_FILE)).toHaveLength(1);
  });
});
