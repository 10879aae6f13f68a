import type { Config } from '../config.ts';
import { QueueUnavailableError } from '../errors.ts';
import { createApp, createMetricsApp } from '../http/app.ts';
import { dashboardRouter } from '../http/dashboard.ts';
import { createDatabaseProbe } from '../http/database-probe.ts';
import type { Logger } from '../logger.ts';
import { createReceiverMetrics } from '../metrics.ts';
import { createQueue } from '../queue/queue.ts';
import {
  answersPing,
  createProducerConnection,
  isReady,
  waitForRedis,
  watchRedisDurability,
} from '../redis.ts';
import { clerkWebhookRouter } from '../webhooks/clerk-webhook.ts';
import { enqueueDelivery } from '../webhooks/enqueue.ts';
import { SignatureVerifier } from '../webhooks/signature.ts';
import { resolveSigningSecrets } from '../webhooks/signing-secrets.ts';
import { closeServer, listen, type Stoppable } from './lifecycle.ts';

/** The key, beside the queue's own, whose disappearance says Redis lost its data. */
const REDIS_MARKER = 'clerk-sync-marker';

/** A receiver started together with Redis waits this long for it rather than answer 503 at once. */
const REDIS_STARTUP_WAIT_MS = 3_000;

export interface Receiver extends Stoppable {
  port: number;
  /** Where GET /metrics is served: METRICS_PORT when set, else the receiver's own port. */
  metricsPort: number;
}

/**
 * The receiver process: verifies and queues Clerk deliveries, and answers health, metrics and
 * (when credentials are configured) the queue dashboard. The database is used for the health
 * check only.
 */
export async function startReceiver(config: Config, log: Logger): Promise<Receiver> {
  const verifier = new SignatureVerifier(resolveSigningSecrets(config));
  const database = createDatabaseProbe(config.databaseUrl);
  const redis = createProducerConnection(config.redisUrl, log);
  const queue = createQueue(config.queueName, config.queuePrefix, redis, log);
  const durability = watchRedisDurability(redis, log, queue.toKey(REDIS_MARKER));
  const checks = {
    database: () => database.isReachable(),
    redis: () => answersPing(redis),
  };
  const metrics = createReceiverMetrics(queue, redis, checks, durability);

  const app = createApp({
    log,
    metrics: config.metricsPort === undefined ? metrics.registry : undefined,
    health: { ...checks, readiness: ['redis'] },
    routers: [
      ...(config.dashboard
        ? [await dashboardRouter(queue, config.dashboard, () => isReady(redis))]
        : []),
      clerkWebhookRouter({
        verifier,
        enqueue: async (data) => {
          // A delivery acknowledged into a Redis that may evict it could be lost: Svix retries a 503.
          const policy = (await durability.settings()).evictingPolicy;
          if (policy)
            throw new QueueUnavailableError(
              `Redis may evict queued jobs (maxmemory-policy ${policy})`,
            );
          return enqueueDelivery(queue, redis, data);
        },
        metrics,
        log,
      }),
    ],
  });

  await waitForRedis(redis, REDIS_STARTUP_WAIT_MS);
  const server = await listen(app, config.port, config);
  const port = (server.address() as { port: number }).port;
  const metricsServer =
    config.metricsPort === undefined
      ? undefined
      : await listen(createMetricsApp(metrics.registry), config.metricsPort);
  const metricsPort = metricsServer ? (metricsServer.address() as { port: number }).port : port;
  log.info({ port, metricsPort, queue: config.queueName }, 'receiver listening');

  return {
    port,
    metricsPort,
    async stop() {
      await closeServer(server);
      if (metricsServer) await closeServer(metricsServer);
      durability.stop();
      await queue.close();
      redis.disconnect();
      await database.close();
    },
  };
}
