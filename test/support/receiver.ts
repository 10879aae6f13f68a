import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Config } from '../../src/config.ts';
import { createLogger, type Logger } from '../../src/logger.ts';
import type { WebhookJobData } from '../../src/queue/queue.ts';
import { startReceiver } from '../../src/services/receiver.ts';
import { testConfig } from './config.ts';
import { useStarted } from './hooks.ts';
import { inspectQueue, REDIS_URL, removeQueue, uniqueQueueName } from './queue.ts';
import { type PrivateRedis, startPrivateRedis } from './redis-server.ts';
import { waitFor } from './wait.ts';

/** A receiver running in the test's own process, and the test's view of its queue. */
export interface InProcessReceiver {
  config: Config;
  url: string;
  metricsUrl: string;
  queue: Queue<WebhookJobData>;
  /** Stops the receiver and removes its queue. */
  stop(): Promise<void>;
}

/**
 * The receiver on a queue of its own (the test's Redis unless `env` names another); `env` must
 * name its DATABASE_URL. Like a load balancer, callers wait for its health check before
 * delivering, since until its Redis connection is up it rightly answers 503; a test of the
 * health check itself does not.
 */
export async function startInProcessReceiver(
  env: Record<string, string | undefined> & { DATABASE_URL: string },
  options: { log?: Logger; waitUntilHealthy?: boolean } = {},
): Promise<InProcessReceiver> {
  const config = testConfig({ REDIS_URL, QUEUE_NAME: uniqueQueueName(), ...env });
  const receiver = await startReceiver(config, options.log ?? createLogger({ level: 'silent' }));
  const url = `http://127.0.0.1:${receiver.port}`;
  const queue = inspectQueue(config.queueName);
  if (options.waitUntilHealthy ?? true) {
    await waitFor(
      async () => (await fetch(`${url}/api/v1/health`)).status === 200,
      5_000,
      'a healthy receiver',
    );
  }
  return {
    config,
    url,
    metricsUrl: `http://127.0.0.1:${receiver.metricsPort}`,
    queue,
    async stop() {
      await receiver.stop();
      await removeQueue(queue);
    },
  };
}

/**
 * For the tests of a file: a Redis of its own, started with these redis-server arguments, a
 * connection to it for changing its settings, a receiver in this process in front of it, and a
 * view of the receiver's queue in that Redis (the receiver's own `queue` looks in the test's).
 */
export function useReceiverOnPrivateRedis(
  database: { url: string },
  redisArgs: string[],
  log: Logger,
): {
  redis: PrivateRedis;
  admin: Redis;
  receiver: InProcessReceiver;
  queue: Queue<WebhookJobData>;
} {
  const redis = useStarted(
    () => startPrivateRedis({ args: redisArgs }),
    (started) => started.destroy(),
  );
  const admin = useStarted(
    async () => new Redis(redis.url),
    async (client) => client.disconnect(),
  );
  const receiver = useStarted(
    () => startInProcessReceiver({ DATABASE_URL: database.url, REDIS_URL: redis.url }, { log }),
    (started) => started.stop(),
  );
  const queue = useStarted(
    async () => inspectQueue(receiver.config.queueName, redis.url),
    (started) => started.close(),
  );
  return { redis, admin, receiver, queue };
}
