import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_ATTEMPTS } from '../src/queue/retry-policy.ts';
import { runNpmScript } from './support/cli.ts';
import { type QueueWithFailures, queueWithFailures, REDIS_URL } from './support/queue.ts';

let fixture: QueueWithFailures;
beforeAll(async () => {
  fixture = await queueWithFailures();
});
afterAll(() => fixture?.remove());

const jobs = (...args: string[]) =>
  runNpmScript('jobs', args, {
    REDIS_URL,
    QUEUE_NAME: fixture.queue.name,
    LOG_LEVEL: 'silent',
  });

/** How many attempts a job has made so far, as BullMQ keeps it in Redis. */
async function attemptsMade(jobId: string): Promise<number> {
  return Number((await fixture.redis.hget(fixture.queue.toKey(jobId), 'atm')) ?? 0);
}

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
        fixture.failed.map(({ svixId, clerkUserId }) => [svixId, 'user.created', clerkUserId, '1']),
      ),
    );
    expect(rows).toHaveLength(4);
    expect(stdout).toContain('simulated failure');
    expect(stdout).not.toContain('@example.com');
  });

  it('retries one failed job with all its attempts again, and names an unknown one', async () => {
    const { svixId } = fixture.failed[0] as { svixId: string };
    expect(await attemptsMade(svixId)).toBe(1);

    const retried = await jobs('retry', svixId);
    const unknown = await jobs('retry', fixture.waitingId);

    expect(retried).toMatchObject({ code: 0, stdout: `retrying ${svixId}\n` });
    expect(await fixture.queue.getJobState(svixId)).toBe('waiting');
    expect(await attemptsMade(svixId)).toBe(0);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`no failed job with id ${fixture.waitingId}`);
  });

  it('retries every failed job with all its attempts again', async () => {
    const rest = fixture.failed.slice(1).map(({ svixId }) => svixId);

    const { code, stdout } = await jobs('retry', '--all');

    expect(code).toBe(0);
    expect(stdout).toBe(`retrying ${rest.length} failed job(s)\n`);
    expect(await fixture.queue.getFailedCount()).toBe(0);
    for (const id of rest) {
      expect(await fixture.queue.getJobState(id)).toBe('waiting');
      expect(await attemptsMade(id)).toBe(0);
    }
    expect((await fixture.queue.getJob(rest[0] as string))?.opts.attempts).toBe(JOB_ATTEMPTS);
  });
});
