import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clerkId } from '../src/clerk/sample-events.ts';
import { createLogger } from '../src/logger.ts';
import { createQueue, JOB_ATTEMPTS } from '../src/queue.ts';
import { runNpmScript } from './support/cli.ts';
import {
  addDelivery,
  failWaitingJobs,
  REDIS_URL,
  removeQueue,
  uniqueQueueName,
} from './support/queue.ts';
import { newSvixId } from './support/svix.ts';

const queueName = uniqueQueueName();
const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
const queue = createQueue(queueName, 'bull', redis, createLogger({ level: 'silent' }));
const failedIds = [newSvixId(), newSvixId(), newSvixId()];
const clerkUserIds = failedIds.map(() => clerkId('user'));
const waitingId = newSvixId();

const jobs = (...args: string[]) =>
  runNpmScript('jobs', args, { REDIS_URL, QUEUE_NAME: queueName, LOG_LEVEL: 'silent' });

/** How many attempts a job has made so far, as BullMQ keeps it in Redis. */
async function attemptsMade(jobId: string): Promise<number> {
  return Number((await redis.hget(queue.toKey(jobId), 'atm')) ?? 0);
}

beforeAll(async () => {
  // Three deliveries fail for good, as a payload that can never succeed does; a fourth waits.
  for (const [index, svixId] of failedIds.entries())
    await addDelivery(queue, svixId, clerkUserIds[index]);
  await failWaitingJobs(queue, failedIds.length);
  await addDelivery(queue, waitingId);
});

afterAll(async () => {
  await removeQueue(queue);
  redis.disconnect();
});

describe('npm run jobs', () => {
  it('counts jobs by state', async () => {
    const { code, stdout } = await jobs('counts');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^waiting +1$/m);
    expect(stdout).toMatch(/^failed +3$/m);
    expect(stdout).toMatch(/^completed +0$/m);
  });

  it('lists failed jobs with their event type, Clerk user id, attempts and reason, and no email address', async () => {
    const { code, stdout } = await jobs('failed');
    expect(code).toBe(0);
    const rows = stdout.trim().split('\n');
    expect(rows[0]).toBe('job id\tevent type\tclerk user id\tattempts\treason');
    expect(rows.slice(1).map((row) => row.split('\t').slice(0, 4))).toEqual(
      expect.arrayContaining(
        failedIds.map((id, index) => [id, 'user.created', clerkUserIds[index], '1']),
      ),
    );
    expect(rows).toHaveLength(4);
    expect(stdout).toContain('simulated failure');
    expect(stdout).not.toContain('@example.com');
  });

  it('retries one failed job with all its attempts again, and names an unknown one', async () => {
    const [first] = failedIds as [string];
    expect(await attemptsMade(first)).toBe(1);

    const retried = await jobs('retry', first);
    const unknown = await jobs('retry', waitingId);

    expect(retried).toMatchObject({ code: 0, stdout: `retrying ${first}\n` });
    expect(await queue.getJobState(first)).toBe('waiting');
    expect(await attemptsMade(first)).toBe(0);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`no failed job with id ${waitingId}`);
  });

  it('retries every failed job with all its attempts again', async () => {
    const rest = failedIds.slice(1);

    const { code, stdout } = await jobs('retry', '--all');

    expect(code).toBe(0);
    expect(stdout).toBe(`retrying ${rest.length} failed job(s)\n`);
    expect(await queue.getFailedCount()).toBe(0);
    for (const id of rest) {
      expect(await queue.getJobState(id)).toBe('waiting');
      expect(await attemptsMade(id)).toBe(0);
    }
    const job = await queue.getJob(failedIds[1] as string);
    expect(job?.opts.attempts).toBe(JOB_ATTEMPTS);
  });
});
