import { type DefaultJobOptions, Queue } from 'bullmq';
import type { Logger } from './logger.ts';
import { type RedisConnection, reportBullErrors } from './redis.ts';

/** The Clerk event types the worker turns into rows; every other type is acknowledged and counted. */
export const USER_EVENT_TYPES = ['user.created', 'user.updated', 'user.deleted'] as const;
export type UserEventType = (typeof USER_EVENT_TYPES)[number];

/** The states a job can be in that operators watch: the queue depth metric and `npm run jobs -- counts`. */
export const QUEUE_STATES = [
  'waiting',
  'active',
  'delayed',
  'prioritized',
  'completed',
  'failed',
] as const;

export function isUserEventType(type: string): type is UserEventType {
  return (USER_EVENT_TYPES as readonly string[]).includes(type);
}

/**
 * A queued delivery: the Clerk event exactly as verified, with Svix's message id. The job's id
 * is derived from the svix-id, so a redelivery of the same message finds the same job.
 */
export interface WebhookJobData {
  svixId: string;
  receivedAt: number;
  event: ClerkEvent;
}

export interface ClerkEvent {
  type: string;
  object: 'event';
  data: Record<string, unknown>;
  timestamp?: unknown;
}

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

/**
 * The part of a Clerk event that the worker reads. Clerk's user payload also carries names,
 * phone numbers, addresses and client IPs; none of that is ours to keep, in Redis or anywhere.
 */
export function toJobEvent(event: ClerkEvent): ClerkEvent {
  const data = event.data;
  const pick = (source: unknown, key: string) =>
    source && typeof source === 'object' ? (source as Record<string, unknown>)[key] : undefined;
  const addresses = Array.isArray(data.email_addresses) ? data.email_addresses : undefined;
  return {
    type: event.type,
    object: 'event',
    timestamp: event.timestamp,
    data: {
      id: data.id,
      deleted: data.deleted,
      email_addresses: addresses?.map((address) => {
        // The worker stores only a verified address, so the status travels with each one.
        const verification = pick(address, 'verification');
        return {
          id: pick(address, 'id'),
          email_address: pick(address, 'email_address'),
          verification: verification ? { status: pick(verification, 'status') } : null,
        };
      }),
      primary_email_address_id: data.primary_email_address_id,
      public_metadata: { timezone: pick(data.public_metadata, 'timezone') },
      unsafe_metadata: { timezone: pick(data.unsafe_metadata, 'timezone') },
      updated_at: data.updated_at,
    },
  };
}

export function createQueue(
  name: string,
  prefix: string,
  connection: RedisConnection,
  log: Logger,
): Queue<WebhookJobData> {
  const queue = new Queue<WebhookJobData>(name, {
    connection,
    prefix,
    defaultJobOptions: DEFAULT_JOB_OPTIONS,
  });
  queue.on('error', reportBullErrors(connection, log, 'queue error'));
  return queue;
}
