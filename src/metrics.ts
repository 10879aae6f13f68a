import type { Queue } from 'bullmq';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { answersInTime, type DependencyChecks } from './http/health.ts';
import { QUEUE_STATES, USER_EVENT_TYPES } from './queue/queue.ts';
import type { RedisConnection, RedisDurabilityWatch } from './redis.ts';

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

/**
 * clerk_sync_dependency_up{dependency}: 1 while the process reaches it, 0 while it does not,
 * checked at each scrape as the health check does, so /metrics answers even while one hangs.
 */
function registerDependencyGauge(registry: Registry, checks: DependencyChecks): void {
  new Gauge({
    name: 'clerk_sync_dependency_up',
    help: 'Whether this process reaches the dependency (1) or not (0), checked at each scrape',
    labelNames: ['dependency'] as const,
    registers: [registry],
    async collect() {
      await Promise.all(
        Object.entries(checks).map(async ([dependency, check]) => {
          this.set({ dependency }, (await answersInTime(check, dependency)) ? 1 : 0);
        }),
      );
    },
  });
}

/**
 * The age of the oldest waiting job, from two O(1) reads: BullMQ pushes new jobs on the left of
 * the wait list and workers take them from the right, so the rightmost is the one that has
 * waited longest, and its hash holds the time it was added. (Prioritized jobs live in another
 * set; clerk-sync never sets a priority.)
 */
async function oldestWaitingSeconds(queue: Queue, redis: RedisConnection): Promise<number> {
  const oldestId = await redis.lindex(queue.toKey('wait'), -1);
  if (oldestId === null) return 0;
  const addedAt = Number(await redis.hget(queue.toKey(oldestId), 'timestamp'));
  return addedAt > 0 ? Math.max(0, (Date.now() - addedAt) / 1000) : 0;
}

/**
 * The receiver reports the queue as a whole (every receiver reports the same values: aggregate
 * with max()), besides the deliveries it took in itself.
 */
export function createReceiverMetrics(
  queue: Queue,
  redis: RedisConnection,
  dependencies: DependencyChecks,
  redisDurability: RedisDurabilityWatch,
) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'clerk_sync_receiver_' });
  registerDependencyGauge(registry, dependencies);
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
  new Gauge({
    name: 'clerk_sync_queue_oldest_waiting_seconds',
    help: 'Age of the oldest job waiting for a worker, since it was queued (0 when none waits)',
    registers: [registry],
    async collect() {
      const age = await oldestWaitingSeconds(queue, redis).catch(() => undefined);
      if (age !== undefined) this.set(age);
    },
  });
  new Gauge({
    name: 'clerk_sync_redis_append_only',
    help: 'Whether Redis writes an append-only file (1) or not (0), so that a restart keeps the queue',
    registers: [registry],
    collect() {
      const { appendOnly } = redisDurability.lastSettings();
      if (appendOnly !== undefined) this.set(appendOnly ? 1 : 0);
    },
  });
  let dataLossesCounted = 0;
  new Counter({
    name: 'clerk_sync_redis_data_lost_total',
    help: 'Times this receiver found that Redis had lost its data, and any delivery queued before',
    registers: [registry],
    collect() {
      const losses = redisDurability.dataLosses();
      this.inc(losses - dataLossesCounted);
      dataLossesCounted = losses;
    },
  });
  new Gauge({
    name: 'clerk_sync_queue_workers',
    help: 'Worker processes connected to the queue (from Redis CLIENT LIST)',
    registers: [registry],
    async collect() {
      const count = await queue.getWorkersCount().catch(() => undefined);
      if (count !== undefined) this.set(count);
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

export function createWorkerMetrics(dependencies: DependencyChecks) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'clerk_sync_worker_' });
  registerDependencyGauge(registry, dependencies);
  const labelNames = ['type'] as const;
  // Every per-type series is exported at 0 from the start: rate() and increase() miss what a
  // series counted before its first scrape, so a first failure, or a burst of jobs done
  // between two scrapes, would otherwise never show.
  const jobCounter = (name: string, help: string) => {
    const counter = new Counter({ name, help, labelNames, registers: [registry] });
    for (const type of USER_EVENT_TYPES) counter.inc({ type }, 0);
    return counter;
  };
  const secondsByType = (name: string, help: string, buckets: number[]) => {
    const histogram = new Histogram({ name, help, labelNames, buckets, registers: [registry] });
    for (const type of USER_EVENT_TYPES) histogram.zero({ type });
    return histogram;
  };
  return {
    registry,
    completed: jobCounter(
      'clerk_sync_jobs_completed_total',
      'Jobs processed successfully, by event type',
    ),
    failed: jobCounter(
      'clerk_sync_jobs_failed_total',
      'Jobs failed for good (no attempts left, or a payload that can never succeed)',
    ),
    retried: jobCounter(
      'clerk_sync_jobs_retried_total',
      'Job attempts that failed and were scheduled to run again',
    ),
    skipped: (() => {
      const counter = new Counter({
        name: 'clerk_sync_events_skipped_total',
        help: 'Events completed without a change for an expected reason (no_email: the user has no verified email address)',
        labelNames: ['type', 'reason'] as const,
        registers: [registry],
      });
      for (const type of ['user.created', 'user.updated'])
        counter.inc({ type, reason: 'no_email' }, 0);
      return counter;
    })(),
    batchSize: new Histogram({
      name: 'clerk_sync_commit_batch_size',
      help: 'Jobs whose changes were committed together in one transaction (group commit)',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
      registers: [registry],
    }),
    duration: secondsByType(
      'clerk_sync_job_duration_seconds',
      'Time spent processing one job',
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    ),
    receiptToCommit: secondsByType(
      'clerk_sync_receipt_to_commit_seconds',
      'Time from the receiver accepting a delivery to the worker committing its change',
      [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    ),
  };
}
export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
