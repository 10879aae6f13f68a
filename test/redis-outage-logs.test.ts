import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { startReceiver } from '../src/services/receiver.ts';
import { startWorker } from '../src/services/worker.ts';
import { testConfig } from './support/config.ts';
import { cleanUpAfterEach, useTestDatabase } from './support/hooks.ts';
import { capturingLogger } from './support/logs.ts';
import { REDIS_URL, uniqueQueueName } from './support/queue.ts';
import { startTcpProxy } from './support/tcp-proxy.ts';
import { waitFor } from './support/wait.ts';

/** Nothing listens here: Redis stays unreachable for the whole test. */
const UNREACHABLE_REDIS = 'redis://127.0.0.1:1';
/** Long enough for several reconnect attempts (after 0.2, 0.6, 1.2 and 2 s). */
const OUTAGE_MS = 3_000;

const db = useTestDatabase({ migrate: false });
const cleanUpLater = cleanUpAfterEach();

/** Warnings and errors about the refused connection. */
function outageLines(records: Record<string, unknown>[]) {
  return records.filter(
    (record) => Number(record.level) >= 40 && JSON.stringify(record).includes('ECONNREFUSED'),
  );
}

describe('a Redis outage in the logs', () => {
  const config = (redisUrl = UNREACHABLE_REDIS) =>
    testConfig({
      DATABASE_URL: db.url,
      REDIS_URL: redisUrl,
      QUEUE_NAME: uniqueQueueName(),
    });

  it.each([
    { process: 'receiver', start: startReceiver, bullMessage: 'queue error' },
    { process: 'worker', start: startWorker, bullMessage: 'worker error' },
  ])('is one warning from the $process, not one per reconnect attempt', async (scenario) => {
    const { log, records } = capturingLogger();
    const started = await scenario.start(config(), log);
    cleanUpLater(() => started.stop());
    await sleep(OUTAGE_MS);

    expect(outageLines(records())).toEqual([
      expect.objectContaining({ level: 40, msg: 'redis connection error' }),
    ]);
    // BullMQ did report each attempt; at debug.
    const attempts = records().filter((record) => record.msg === scenario.bullMessage);
    expect(attempts.length).toBeGreaterThan(1);
    expect(attempts.every((record) => record.level === 20)).toBe(true);
  });

  it.each([
    { process: 'receiver', start: startReceiver },
    { process: 'worker', start: startWorker },
  ])('shows its end at warn too, from the $process', async (scenario) => {
    const proxy = await startTcpProxy(REDIS_URL);
    cleanUpLater(() => proxy.close());
    const { log, records } = capturingLogger('warn');
    const started = await scenario.start(config(proxy.url), log);
    cleanUpLater(() => started.stop());
    const messages = () => records().map((record) => record.msg);

    proxy.refuse();
    proxy.cutAll();
    await waitFor(() => messages().includes('redis connection error'), 5_000, 'the outage');
    proxy.accept();
    await waitFor(() => messages().includes('redis connection restored'), 5_000, 'its end');

    expect(messages().filter((msg) => msg?.toString().startsWith('redis connection'))).toEqual([
      'redis connection error',
      'redis connection restored',
    ]);
  });
});
