import type { Queue } from 'bullmq';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { QUEUE_STATES } from './queue.ts';

const EVENT_TYPE_PATTERN = /^[a-z_]{1,40}\.[a-z_]{1,40}$/;

/** Event types become metric labels only in Clerk's `noun.verb` shape, so labels stay bounded. */
export function eventTypeLabel(type: unknown): string {
  return typeof type === 'string' && EVENT_TYPE_PATTERN.test(type) ? type : 'unknown';
}

export type WebhookOutcome =
  | 'queued'
  | 'requeued'
  | 'ignored'
  | 'missing_headers'
  | 'invalid_signature'
  | 'invalid_payload'
  | 'too_large'
  | 'bad_request'
  | 'unavailable';

export function createReceiverMetrics(queue: Queue) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'clerk_sync_receiver_' });
  const webhooksReceived = new Counter({
    name: 'clerk_sync_webhooks_received_total',
    help: 'Webhook deliveries received, by event type and outcome',
    labelNames: ['type', 'outcome'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'clerk_sync_queue_jobs',
    help: 'Jobs in the webhook queue, by state',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const counts = await queue.getJobCounts(...QUEUE_STATES).catch(() => undefined);
      for (const state of QUEUE_STATES) {
        if (counts) this.set({ state }, counts[state] ?? 0);
      }
    },
  });
  return {
    registry,
    received(type: unknown, outcome: WebhookOutcome) {
      webhooksReceived.inc({ type: eventTypeLabel(type), outcome });
    },
  };
}
export type ReceiverMetrics = ReturnType<typeof createReceiverMetrics>;

export function createWorkerMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'clerk_sync_worker_' });
  const labelNames = ['type'] as const;
  return {
    registry,
    completed: new Counter({
      name: 'clerk_sync_jobs_completed_total',
      help: 'Jobs processed successfully, by event type',
      labelNames,
      registers: [registry],
    }),
    failed: new Counter({
      name: 'clerk_sync_jobs_failed_total',
      help: 'Jobs failed for good (no attempts left, or a payload that can never succeed)',
      labelNames,
      registers: [registry],
    }),
    skipped: new Counter({
      name: 'clerk_sync_events_skipped_total',
      help: 'Events completed without a change for an expected reason (no_email: the user has no verified email address)',
      labelNames: ['type', 'reason'] as const,
      registers: [registry],
    }),
    retried: new Counter({
      name: 'clerk_sync_jobs_retried_total',
      help: 'Job attempts that failed and were scheduled to run again',
      labelNames,
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'clerk_sync_commit_batch_size',
      help: 'Jobs whose changes were committed together in one transaction (group commit)',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'clerk_sync_job_duration_seconds',
      help: 'Time spent processing one job',
      labelNames,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}
export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
