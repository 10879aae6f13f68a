/**
 * Redis memory under sustained traffic: sends DELIVERIES signed deliveries (100,000 by default)
 * through a real receiver and worker backed by a private Redis, then reports Redis's memory and
 * the queue's job counts, showing that retention keeps both bounded.
 *   node bench/redis-memory.ts            (DELIVERIES=20000 for a shorter run)
 */
import { Redis } from 'ioredis';
import { sampleUserEvent } from '../src/clerk/sample-events.ts';
import { createLogger } from '../src/logger.ts';
import { createQueue } from '../src/queue/queue.ts';
import { startReceiver } from '../src/services/receiver.ts';
import { startWorker } from '../src/services/worker.ts';
import { testConfig } from '../test/support/config.ts';
import { createTestDatabase } from '../test/support/database.ts';
import { startPrivateRedis, usedMemory } from '../test/support/redis-server.ts';
import { deliver } from '../test/support/svix.ts';

const DELIVERIES = Number(process.env.DELIVERIES ?? 100_000);
const CONNECTIONS = 32;

const redisServer = await startPrivateRedis();
const redisUrl = redisServer.url;
const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
const db = await createTestDatabase();
const config = testConfig({ DATABASE_URL: db.url, REDIS_URL: redisUrl });
const log = createLogger({ level: 'silent' });
const receiver = await startReceiver(config, log);
const worker = await startWorker(config, log, { services: db });
const before = await usedMemory(redis);
const startedAt = performance.now();

let next = 0;
let accepted = 0;
await Promise.all(
  Array.from({ length: CONNECTIONS }, async () => {
    while (next < DELIVERIES) {
      const sent = ++next;
      const response = await deliver(
        `http://127.0.0.1:${receiver.port}`,
        sampleUserEvent('user.created'),
      );
      await response.arrayBuffer();
      if (response.status === 202) accepted++;
      if (sent % 10_000 === 0) console.log(`sent ${sent}`);
    }
  }),
);
const queue = createQueue(config.queueName, config.queuePrefix, redis, log);
for (;;) {
  const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
  if (Object.values(counts).every((count) => count === 0)) break;
  await new Promise((resolve) => setTimeout(resolve, 200));
}
const seconds = (performance.now() - startedAt) / 1000;
const after = await usedMemory(redis);
const counts = await queue.getJobCounts('completed', 'failed');
console.log(
  JSON.stringify(
    {
      deliveries: DELIVERIES,
      accepted,
      seconds: Number(seconds.toFixed(1)),
      deliveriesPerSecond: Math.round(DELIVERIES / seconds),
      redisUsedMemoryBeforeMiB: Number((before / 2 ** 20).toFixed(1)),
      redisUsedMemoryAfterMiB: Number((after / 2 ** 20).toFixed(1)),
      jobsKept: counts,
    },
    null,
    2,
  ),
);

await queue.close();
await worker.stop();
await receiver.stop();
redis.disconnect();
await redisServer.destroy();
await db.drop();
