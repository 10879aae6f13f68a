import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Config } from '../config.ts';
import { InvalidPayloadError, isReadOnly, isSchemaBehind, READ_ONLY_DATABASE } from '../errors.ts';
import { type Logger, scrub } from '../logger.ts';
import type { WorkerMetrics } from '../metrics.ts';
import type { Services } from '../orm.ts';
import {
  type ClerkEvent,
  isUserEventType,
  type UserEventType,
  type WebhookJobData,
} from '../queue/queue.ts';
import { cappedExponentialBackoff } from '../queue/retry-policy.ts';
import { type RedisConnection, reportBullErrors } from '../redis.ts';
import type { ChangeOutcome } from '../users/apply-user-changes.ts';
import { deletionOf, type UserChange, upsertOf } from '../users/user-change.ts';
import { GroupCommit } from './group-commit.ts';

/**
 * A batch of a few hundred users commits in well under a second; one that has taken this long
 * is waiting on a connection that will not answer. Its jobs fail and are retried.
 */
export const COMMIT_TIMEOUT_MS = 15_000;

/** A job may be orphaned by dying workers this many times before BullMQ gives up on it. */
export const MAX_STALLED_COUNT = 10;

/** The change each user event stands for; webhooks, backfill and reconcile share these functions. */
const CHANGE_OF: Record<UserEventType, (data: unknown) => UserChange> = {
  'user.created': upsertOf,
  'user.updated': upsertOf,
  'user.deleted': deletionOf,
};

/**
 * The event's change, or undefined for a type the worker does not process. A payload that can
 * never become a change fails its job for good (it stays in the failed set for inspection).
 */
export function changeOf(event: ClerkEvent): UserChange | undefined {
  if (!isUserEventType(event.type)) return undefined;
  try {
    return CHANGE_OF[event.type](event.data);
  } catch (error) {
    if (error instanceof InvalidPayloadError) {
      throw new UnrecoverableError(`invalid ${event.type} payload: ${error.message}`);
    }
    throw error;
  }
}

export interface WebhookWorkerOptions {
  config: Config;
  connection: RedisConnection;
  services: Services;
  metrics: WorkerMetrics;
  log: Logger;
}

/**
 * What a job completes with: the change it made, or `skipped` and why for an expected
 * condition that stores nothing (a user with no verified email address: a phone-only sign-up).
 */
export type JobResult =
  | { outcome: Exclude<ChangeOutcome, 'no_email'> | 'ignored' }
  | { outcome: 'skipped'; reason: 'no_email' };

function jobResult(outcome: ChangeOutcome | 'ignored'): JobResult {
  return outcome === 'no_email' ? { outcome: 'skipped', reason: outcome } : { outcome };
}

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

/** A retried failure's log line, naming what the operator must fix when the database says. */
function failureMessage(error: unknown): string {
  if (isSchemaBehind(error)) {
    return 'event processing failed: the database is not migrated; run npm run migration:up';
  }
  if (isReadOnly(error)) return `event processing failed: ${READ_ONLY_DATABASE}`;
  return 'event processing failed';
}

/**
 * The BullMQ worker: event → change → group commit. A job's log lines carry the delivery's
 * identity (never its personal data). Thrown errors are retried with capped exponential
 * backoff; an UnrecoverableError fails the job at once and leaves it in the failed set for
 * inspection and replay.
 */
export function createWebhookWorker(options: WebhookWorkerOptions): Worker<WebhookJobData> {
  const { config, connection, services, metrics, log } = options;
  const groupCommit = new GroupCommit({
    em: services.em,
    log,
    maxBatch: config.workerBatchSize,
    windowMs: config.workerBatchWindowMs,
    commitTimeoutMs: COMMIT_TIMEOUT_MS,
    onBatch: (size) => metrics.batchSize.observe(size),
  });

  const processor = async (job: Job<WebhookJobData>): Promise<JobResult> => {
    const { svixId, event } = job.data;
    const clerkUserId = typeof event.data?.id === 'string' ? event.data.id : undefined;
    // Fields of each line rather than a child logger, which would serialize them for every job
    // even when its line is not written.
    const identity = { svixId, jobId: job.id, eventType: event.type, clerkUserId };
    const stopTimer = metrics.duration.startTimer({ type: event.type });
    try {
      const change = changeOf(event);
      const result = jobResult(change ? await groupCommit.apply(change) : 'ignored');
      if (change) {
        const seconds = (Date.now() - job.data.receivedAt) / 1000;
        metrics.receiptToCommit.observe({ type: event.type }, Math.max(0, seconds));
      }
      if (result.outcome === 'skipped') {
        metrics.skipped.inc({ type: event.type, reason: result.reason });
      }
      log.info({ ...identity, ...result, attempt: job.attemptsMade + 1 }, 'event processed');
      return result;
    } catch (error) {
      const permanent = error instanceof UnrecoverableError;
      const willRetry = !permanent && job.attemptsMade + 1 < (job.opts.attempts ?? 1);
      log[willRetry ? 'warn' : 'error'](
        { ...identity, err: error, attempt: job.attemptsMade + 1, willRetry },
        permanent ? 'event cannot be processed; job failed for good' : failureMessage(error),
      );
      throw scrubError(error);
    } finally {
      stopTimer();
    }
  };

  const worker = new Worker<WebhookJobData>(config.queueName, processor, {
    prefix: config.queuePrefix,
    connection,
    concurrency: config.workerConcurrency,
    lockDuration: config.workerLockDurationMs,
    // BullMQ checks for stalled jobs every 30 s whatever the lock duration; checking once per
    // lock duration is what lets a shorter lock actually hand a dead worker's jobs on sooner.
    stalledInterval: config.workerLockDurationMs,
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
  worker.on('error', reportBullErrors(connection, log, 'worker error'));
  return worker;
}
