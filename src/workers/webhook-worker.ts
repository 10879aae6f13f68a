import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { type Logger, scrub } from '../logger.ts';
import type { WorkerMetrics } from '../metrics.ts';
import type { Services } from '../orm.ts';
import { cappedExponentialBackoff, type WebhookJobData } from '../queue.ts';
import { reportBullErrors } from '../redis.ts';
import type { UserChange } from '../users/apply-user-changes.ts';
import { type HandlerOutcome, handlerContext } from './context.ts';
import { clerkUserIdOf, dispatchEvent } from './dispatch.ts';
import { GroupCommit } from './group-commit.ts';

/**
 * A batch of a few hundred users commits in well under a second; one that has taken this long
 * is waiting on a connection that will not answer. Its jobs fail and are retried.
 */
export const COMMIT_TIMEOUT_MS = 15_000;

/** A job may be orphaned by dying workers this many times before BullMQ gives up on it. */
export const MAX_STALLED_COUNT = 10;

export interface WebhookWorkerOptions {
  queueName: string;
  queuePrefix: string;
  connection: Redis;
  concurrency: number;
  services: Services;
  metrics: WorkerMetrics;
  log: Logger;
  /** A job whose worker died is taken over after this long without a lock renewal. */
  lockDurationMs: number;
  /** Jobs whose changes may share one transaction; 1 commits each job on its own. */
  batchSize: number;
  batchWindowMs: number;
}

/**
 * What a job completes with: the change it made, or `skipped` and why for an expected
 * condition that stores nothing (a user with no verified email address: a phone-only sign-up).
 */
export type JobResult =
  | { outcome: Exclude<HandlerOutcome, 'no_email'> | 'ignored' }
  | { outcome: 'skipped'; reason: 'no_email' };

function jobResult(outcome: HandlerOutcome | 'ignored'): JobResult {
  return outcome === 'no_email' ? { outcome: 'skipped', reason: outcome } : { outcome };
}

/**
 * The BullMQ worker: each job gets its own forked entity manager and a child logger that
 * carries the delivery's identity (never its personal data). Thrown errors are retried with
 * capped exponential backoff; an UnrecoverableError fails the job at once and leaves it in the
 * failed set for inspection and replay.
 */
/**
 * BullMQ keeps a failed job's error message and stack in Redis, where the dashboard and the
 * jobs command show them; a database error can quote the row it could not write, email
 * address included. They are scrubbed like log lines before BullMQ sees them.
 */
function scrubError(error: unknown): unknown {
  if (error instanceof Error) {
    error.message = scrub(error.message);
    if (error.stack) error.stack = scrub(error.stack);
  }
  return error;
}

export function createWebhookWorker(options: WebhookWorkerOptions): Worker<WebhookJobData> {
  const { services, metrics, log } = options;
  const groupCommit =
    options.batchSize > 1
      ? new GroupCommit({
          em: services.em,
          log,
          maxBatch: options.batchSize,
          windowMs: options.batchWindowMs,
          commitTimeoutMs: COMMIT_TIMEOUT_MS,
          onBatch: (size) => metrics.batchSize.observe(size),
        })
      : undefined;

  const processor = async (job: Job<WebhookJobData>) => {
    const { svixId, event } = job.data;
    const jobLog = log.child({
      svixId,
      jobId: job.id,
      eventType: event.type,
      clerkUserId: clerkUserIdOf(event),
    });
    const stopTimer = metrics.duration.startTimer({ type: event.type });
    try {
      const em = services.em.fork();
      const context = groupCommit
        ? { em, log: jobLog, commit: (change: UserChange) => groupCommit.apply(change) }
        : handlerContext(em, jobLog);
      const result = jobResult(await dispatchEvent(event, context));
      if (result.outcome === 'skipped')
        metrics.skipped.inc({ type: event.type, reason: result.reason });
      jobLog.info({ ...result, attempt: job.attemptsMade + 1 }, 'event processed');
      return result;
    } catch (error) {
      const permanent = error instanceof UnrecoverableError;
      const willRetry = !permanent && job.attemptsMade + 1 < (job.opts.attempts ?? 1);
      jobLog[willRetry ? 'warn' : 'error'](
        { err: error, attempt: job.attemptsMade + 1, willRetry },
        permanent ? 'event cannot be processed; job failed for good' : 'event processing failed',
      );
      throw scrubError(error);
    } finally {
      stopTimer();
    }
  };

  const worker = new Worker<WebhookJobData>(options.queueName, processor, {
    prefix: options.queuePrefix,
    connection: options.connection,
    concurrency: options.concurrency,
    lockDuration: options.lockDurationMs,
    // BullMQ checks for stalled jobs every 30 s whatever the lock duration; checking once per
    // lock duration is what lets a shorter lock actually hand a dead worker's jobs on sooner.
    stalledInterval: options.lockDurationMs,
    maxStalledCount: MAX_STALLED_COUNT,
    settings: { backoffStrategy: cappedExponentialBackoff },
    autorun: false,
  });

  worker.on('completed', (job) => metrics.completed.inc({ type: job.data.event.type }));
  worker.on('failed', (job, error) => {
    if (!job) return;
    const final =
      error instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
    (final ? metrics.failed : metrics.retried).inc({ type: job.data.event.type });
  });
  worker.on('error', reportBullErrors(options.connection, log, 'worker error'));
  return worker;
}
