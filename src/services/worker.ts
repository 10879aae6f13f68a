import type { Config } from '../config.ts';
import { TimeoutError } from '../errors.ts';
import { createApp } from '../http/app.ts';
import type { Logger } from '../logger.ts';
import { createWorkerMetrics } from '../metrics.ts';
import { createORM, isDatabaseReachable, type Services } from '../orm.ts';
import { answersPing, createWorkerConnection } from '../redis.ts';
import { withTimeout } from '../timeout.ts';
import { createWebhookWorker } from '../workers/webhook-worker.ts';
import { closeServer, listen, type Stoppable } from './lifecycle.ts';

/**
 * Jobs take milliseconds, so a worker still closing after this long is waiting on a Redis (or
 * PostgreSQL) that does not answer: BullMQ's graceful close never returns while Redis is down.
 * Stopping then goes on without it, well inside Docker's 10 s grace period; a job still in
 * hand is retaken by another worker once its lock expires.
 */
export const WORKER_CLOSE_TIMEOUT_MS = 5_000;

export interface WorkerProcess extends Stoppable {
  /** The status server's port: GET /metrics, GET /api/v1/health, GET /livez and GET /readyz. */
  port: number;
}

/**
 * The worker process: takes jobs from the queue and writes users through the unit of work,
 * and serves its own metrics and health on WORKER_METRICS_PORT. stop() lets the jobs in hand
 * finish before it closes the connections.
 */
export async function startWorker(
  config: Config,
  log: Logger,
  options: { services?: Services } = {},
): Promise<WorkerProcess> {
  const services = options.services ?? createORM(config.databaseUrl, log);
  const connection = createWorkerConnection(config.redisUrl, log);
  const checks = {
    database: () => isDatabaseReachable(services.orm),
    redis: () => answersPing(connection),
  };
  const metrics = createWorkerMetrics(checks);
  const worker = createWebhookWorker({ config, connection, services, metrics, log });
  void worker.run().catch((error) => log.error({ err: error }, 'worker stopped with an error'));

  const app = createApp({
    log,
    metrics: metrics.registry,
    health: { ...checks, readiness: ['database', 'redis'] },
  });
  const server = await listen(app, config.workerMetricsPort);
  const port = (server.address() as { port: number }).port;
  log.info(
    { queue: config.queueName, concurrency: config.workerConcurrency, metricsPort: port },
    'worker started',
  );

  return {
    port,
    async stop() {
      try {
        await withTimeout(worker.close(), WORKER_CLOSE_TIMEOUT_MS, 'closing the worker');
      } catch (error) {
        if (!(error instanceof TimeoutError)) throw error;
        log.warn(
          { timeoutMs: WORKER_CLOSE_TIMEOUT_MS },
          'worker did not close in time (Redis or PostgreSQL unreachable?); stopping without it',
        );
      }
      await closeServer(server);
      connection.disconnect();
      if (!options.services) await services.orm.close();
    },
  };
}
