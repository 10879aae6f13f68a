import { Queue } from 'bullmq';
import type { Logger } from '../logger.ts';
import { type RedisConnection, reportBullErrors } from '../redis.ts';
import { DEFAULT_JOB_OPTIONS } from './retry-policy.ts';

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
