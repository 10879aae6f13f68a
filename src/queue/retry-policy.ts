import type { DefaultJobOptions } from 'bullmq';

/**
 * Svix gives up on a delivery about 28 hours after the first attempt; an acknowledged job must
 * not give up sooner. Backoff doubles from 1 s to a cap of 5 minutes, and 400 attempts span
 * about 32.6 hours, so a transient error (PostgreSQL unreachable, a timeout, a deadlock, a
 * serialization failure) that outlasts Svix's own retries still ends with the job done. Only
 * a payload that can never succeed (UnrecoverableError) fails sooner, at once.
 */
export const JOB_ATTEMPTS = 400;
export const BACKOFF_DELAY_MS = 1_000;
export const BACKOFF_MAX_DELAY_MS = 5 * 60_000;
/** A job that fails 400 times would otherwise carry 400 stack traces in Redis. */
export const STACK_TRACE_LIMIT = 3;

/**
 * Finished jobs are kept so that a quick redelivery of a completed one is recognised without
 * touching the database (the handlers are idempotent, so an older duplicate is merely
 * processed again) and so that failed ones stay inspectable. Completed jobs are bounded in age
 * and count. Failed jobs only in age: each was answered 2xx, so trimming them by count would
 * drop acknowledged deliveries with no trace whenever many fail at once.
 */
export const COMPLETED_JOB_RETENTION = { age: 24 * 60 * 60, count: 10_000 };
export const FAILED_JOB_RETENTION = { age: 14 * 24 * 60 * 60 };

export const DEFAULT_JOB_OPTIONS: DefaultJobOptions = {
  attempts: JOB_ATTEMPTS,
  backoff: { type: 'capped-exponential' },
  stackTraceLimit: STACK_TRACE_LIMIT,
  removeOnComplete: COMPLETED_JOB_RETENTION,
  removeOnFail: FAILED_JOB_RETENTION,
};

/** The backoff strategy named 'capped-exponential' in DEFAULT_JOB_OPTIONS, registered by the worker. */
export function cappedExponentialBackoff(attemptsMade: number): number {
  return Math.min(BACKOFF_MAX_DELAY_MS, BACKOFF_DELAY_MS * 2 ** Math.max(0, attemptsMade - 1));
}
