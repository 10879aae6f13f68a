import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clerkId, sampleDeletedEvent, sampleUserEvent } from '../src/clerk/sample-events.ts';
import { READ_ONLY_DATABASE } from '../src/errors.ts';
import { createLogger } from '../src/logger.ts';
import { initORM, migrateUp } from '../src/orm.ts';
import { startWorker, type WorkerProcess } from '../src/services/worker.ts';
import { countRows, makeReadOnly, openPoolConnections, sql } from './support/database.ts';
import { cleanUpAfterEach, useTestDatabase } from './support/hooks.ts';
import { capturingLogger, expectCleanLogsAfterEach } from './support/logs.ts';
import { failWaitingJobs } from './support/queue.ts';
import { type InProcessReceiver, startInProcessReceiver } from './support/receiver.ts';
import { expectNewUserStored, storedPreferences, storedUser } from './support/stored-users.ts';
import { deliver, newSvixId, TEST_SECRET } from './support/svix.ts';
import { waitFor } from './support/wait.ts';

/** One receiver and one worker on a shared queue and database, as `npm start` runs them. */
interface Pipeline extends InProcessReceiver {
  worker?: WorkerProcess;
}

const db = useTestDatabase();
let main: Pipeline;
const logs = capturingLogger();

beforeAll(async () => {
  main = await startPipeline();
  main.worker = await startWorker(main.config, logs.log, { services: db });
});

afterAll(() => stopPipeline(main));
expectCleanLogsAfterEach(logs, [TEST_SECRET]);
const cleanUpLater = cleanUpAfterEach();

function startPipeline(overrides: Record<string, string> = {}): Promise<Pipeline> {
  return startInProcessReceiver({ DATABASE_URL: db.url, ...overrides }, { log: logs.log });
}

/** A pipeline of the test's own, stopped after it. */
async function startTestPipeline(overrides: Record<string, string> = {}): Promise<Pipeline> {
  const pipeline = await startPipeline(overrides);
  cleanUpLater(() => stopPipeline(pipeline));
  return pipeline;
}

async function stopPipeline(pipeline: Pipeline | undefined): Promise<void> {
  await pipeline?.worker?.stop();
  await pipeline?.stop();
}

/** A user event of a test table, and the outcome the worker must report for it. */
interface UserEventCase {
  type: 'user.created' | 'user.updated';
  updatedAt: number;
  outcome: string;
  timezone?: string;
}

function email(label: string): string {
  return `${label}.${clerkId('e').slice(2, 10).toLowerCase()}@example.com`;
}

/** Delivers an event through HTTP and returns its svix-id, once the receiver has queued it. */
async function send(event: object, pipeline = main, svixId = newSvixId()): Promise<string> {
  const response = await deliver(pipeline.url, event, { svixId });
  expect(response.status).toBe(202);
  return svixId;
}

async function settled(svixId: string, pipeline = main): Promise<'completed' | 'failed'> {
  return waitFor(
    async () => {
      const state = await pipeline.queue.getJobState(svixId);
      return state === 'completed' || state === 'failed' ? state : undefined;
    },
    15_000,
    `job ${svixId} to finish`,
  );
}

/** Delivers an event and waits until the worker has processed it; returns the job's outcome. */
async function processed(event: object, pipeline = main): Promise<unknown> {
  const svixId = await send(event, pipeline);
  expect(await settled(svixId, pipeline)).toBe('completed');
  return (await pipeline.queue.getJob(svixId))?.returnvalue?.outcome;
}

describe('through HTTP, Redis and the worker', () => {
  it('creates a user with default preferences', async () => {
    const id = clerkId('user');
    const address = email('created');

    const outcome = await processed(
      sampleUserEvent('user.created', { id, email: address, timezone: 'Europe/Paris' }),
    );

    expect(outcome).toBe('created');
    await expectNewUserStored(db, id, { email: address, timezone: 'Europe/Paris' });
  });

  it('deletes the user, and a late user.created does not bring it back', async () => {
    const id = clerkId('user');
    await processed(
      sampleUserEvent('user.created', { id, email: email('deleted'), updatedAt: 1_000 }),
    );

    expect(await processed(sampleDeletedEvent(id))).toBe('deleted');
    expect(await storedUser(db, id)).toBeUndefined();
    expect(await countRows(db, 'deleted_clerk_users', 'clerk_user_id = ?', [id])).toBe(1);

    expect(
      await processed(
        sampleUserEvent('user.created', { id, email: email('late'), updatedAt: 9_000 }),
      ),
    ).toBe('deleted_earlier');
    expect(await countRows(db, 'users', 'clerk_user_id = ?', [id])).toBe(0);
    expect(await countRows(db, 'user_preferences')).toBe(await countRows(db, 'users'));
  });

  // Whatever the order the events come in, the newest one is what is stored.
  it.each<{ does: string; events: UserEventCase[] }>([
    {
      does: 'updates the email and timezone, and ignores an older update that arrives late',
      events: [
        { type: 'user.created', updatedAt: 1_000, outcome: 'created' },
        { type: 'user.updated', updatedAt: 3_000, outcome: 'updated', timezone: 'Asia/Tokyo' },
        { type: 'user.updated', updatedAt: 2_000, outcome: 'stale' },
      ],
    },
    {
      does: 'creates the user from a user.updated that overtakes its user.created',
      events: [
        { type: 'user.updated', updatedAt: 2_000, outcome: 'created', timezone: 'America/Chicago' },
        { type: 'user.created', updatedAt: 1_000, outcome: 'stale' },
      ],
    },
  ])('$does', async ({ events }) => {
    const id = clerkId('user');
    const sent = events.map((event) => ({ ...event, email: email(`at-${event.updatedAt}`) }));
    for (const { type, outcome, ...fields } of sent) {
      expect(await processed(sampleUserEvent(type, { id, ...fields }))).toBe(outcome);
    }
    const newest = sent.reduce((last, event) => (event.updatedAt > last.updatedAt ? event : last));
    expect(await storedUser(db, id)).toMatchObject({
      email: newest.email,
      timezone: newest.timezone,
    });
    expect(await storedPreferences(db, id)).toHaveLength(1);
  });

  it('completes a user with no verified email address as skipped, counts and logs it without personal data, and creates it when an address is verified', async () => {
    const id = clerkId('user');
    const unverified = email('not-theirs');
    const event = sampleUserEvent('user.created', { id, email: unverified });
    const phoneOnly = {
      ...event,
      data: {
        ...event.data,
        // Someone else's address, added but never verified, and no primary address.
        email_addresses: event.data.email_addresses.map((address) => ({
          ...address,
          verification: null,
        })),
        primary_email_address_id: null,
        first_name: 'Zelphine',
        last_name: 'Quortensen',
        phone_numbers: [{ id: 'idn_phone', phone_number: '+15555550123' }],
      },
    };

    const svixId = await send(phoneOnly);

    expect(await settled(svixId)).toBe('completed');
    const job = await main.queue.getJob(svixId);
    expect(job?.returnvalue).toEqual({ outcome: 'skipped', reason: 'no_email' });
    expect(job?.attemptsMade).toBe(1);
    expect(await countRows(db, 'users', 'clerk_user_id = ?', [id])).toBe(0);
    const line = await waitFor(
      () => logs.lines.find((entry) => entry.includes(svixId) && entry.includes('"skipped"')),
      5_000,
      'the skip to be logged',
    );
    expect(JSON.parse(line)).toMatchObject({
      level: 30,
      msg: 'event processed',
      clerkUserId: id,
      svixId,
      jobId: svixId,
      eventType: 'user.created',
      outcome: 'skipped',
      reason: 'no_email',
    });
    for (const personal of ['Zelphine', 'Quortensen', '+15555550123', '@']) {
      expect(line).not.toContain(personal);
    }
    await waitFor(
      async () =>
        /^clerk_sync_events_skipped_total\{type="user\.created",reason="no_email"\} 1$/m.test(
          await (await fetch(`http://127.0.0.1:${main.worker?.port}/metrics`)).text(),
        ),
      5_000,
      'the skip to be counted',
    );

    const verified = email('verified');
    expect(
      await processed(
        sampleUserEvent('user.updated', { id, email: verified, updatedAt: Date.now() + 1_000 }),
      ),
    ).toBe('created');
    expect(await storedUser(db, id)).toMatchObject({ email: verified });
    expect(await storedPreferences(db, id)).toHaveLength(1);
  });

  it('stores one user from fifty copies of an event delivered at once, failing no job', async () => {
    // Its own queue, and the worker started once all copies wait, so that fifty jobs really
    // run side by side.
    const pipeline = await startTestPipeline({ WORKER_CONCURRENCY: '50' });
    const id = clerkId('user');
    const event = sampleUserEvent('user.created', { id, email: email('fifty') });
    const distinctIds = Array.from({ length: 50 }, () => newSvixId());
    const repeatedId = newSvixId();

    await Promise.all([
      ...distinctIds.map((svixId) => send(event, pipeline, svixId)),
      ...Array.from({ length: 5 }, () => send(event, pipeline, repeatedId)),
    ]);
    expect(await pipeline.queue.getJobCountByTypes('waiting')).toBe(51);
    await openPoolConnections(db);
    pipeline.worker = await startWorker(pipeline.config, logs.log, { services: db });
    const states = await Promise.all(
      [...distinctIds, repeatedId].map((svixId) => settled(svixId, pipeline)),
    );

    expect(states.filter((state) => state !== 'completed')).toEqual([]);
    const jobs = await pipeline.queue.getCompleted(0, -1);
    expect(jobs.map((job) => job.attemptsMade)).toEqual(jobs.map(() => 1));
    expect(await pipeline.queue.getJobCountByTypes('failed')).toBe(0);
    expect(await countRows(db, 'users', 'clerk_user_id = ?', [id])).toBe(1);
    expect(await storedPreferences(db, id)).toHaveLength(1);
  });
});

describe('a worker started before the migrations ran', () => {
  const unmigrated = useTestDatabase({ migrate: false });

  it('says so in its log, keeps the job, and stores the user once they have run', async () => {
    const pipeline = await startTestPipeline({ DATABASE_URL: unmigrated.url });
    pipeline.worker = await startWorker(pipeline.config, logs.log, { services: unmigrated });
    const id = clerkId('user');
    const svixId = await send(sampleUserEvent('user.created', { id }), pipeline);
    const failure = await waitFor(
      () => logs.records().find((record) => record.svixId === svixId && record.willRetry),
      15_000,
      'the first attempt to fail',
    );
    expect(failure.msg).toBe(
      'event processing failed: the database is not migrated; run npm run migration:up',
    );

    await migrateUp(unmigrated.orm);

    expect(await settled(svixId, pipeline)).toBe('completed');
    expect(await countRows(unmigrated, 'users', 'clerk_user_id = ?', [id])).toBe(1);
  });
});

describe('a worker whose database is read-only (a standby, a read replica)', () => {
  const readOnly = useTestDatabase();

  it('says so in its log and keeps the job for its retries', async () => {
    await makeReadOnly(readOnly);
    const services = await initORM(readOnly.url, createLogger({ level: 'silent' }));
    cleanUpLater(() => services.orm.close());
    const pipeline = await startTestPipeline({ DATABASE_URL: readOnly.url });
    pipeline.worker = await startWorker(pipeline.config, logs.log, { services });
    const svixId = await send(sampleUserEvent('user.created', { id: clerkId('user') }), pipeline);

    const failure = await waitFor(
      () => logs.records().find((record) => record.svixId === svixId && record.willRetry),
      15_000,
      'the first attempt to fail',
    );
    expect(failure.msg).toBe(`event processing failed: ${READ_ONLY_DATABASE}`);
    expect(await countRows(readOnly, 'users')).toBe(0);
  });
});

describe('a job that failed for good', () => {
  it('runs again and completes when Svix redelivers it', async () => {
    const pipeline = await startTestPipeline();
    const id = clerkId('user');
    const address = email('replayed');
    const event = sampleUserEvent('user.created', { id, email: address });
    const svixId = await send(event, pipeline);
    await failWaitingJobs(pipeline.queue, 1);
    expect(await settled(svixId, pipeline)).toBe('failed');
    pipeline.worker = await startWorker(pipeline.config, logs.log, { services: db });

    const redelivery = await deliver(pipeline.url, event, { svixId });

    expect(redelivery.status).toBe(202);
    expect(await redelivery.json()).toMatchObject({ status: 'requeued' });
    expect(await settled(svixId, pipeline)).toBe('completed');
    expect((await pipeline.queue.getJob(svixId))?.returnvalue).toEqual({ outcome: 'created' });
    expect(await storedUser(db, id)).toMatchObject({ email: address });
    expect(await storedPreferences(db, id)).toHaveLength(1);
  });
});

describe('a database error that quotes the row it could not write', () => {
  it('keeps the email address out of the job failure reason, the logs and the metrics', async () => {
    // A constraint the service knows nothing about: the insert fails, and the ORM's error
    // message quotes the statement's values, email included.
    await sql(
      db,
      "alter table users add constraint test_no_blocked check (email not like 'blocked%')",
    );
    try {
      const address = email('blocked');
      const svixId = await send(sampleUserEvent('user.created', { email: address }));
      const job = await waitFor(
        async () => {
          const candidate = await main.queue.getJob(svixId);
          return candidate?.failedReason ? candidate : undefined;
        },
        15_000,
        'the first attempt to fail',
      );
      expect(job.failedReason).toMatch(/test_no_blocked/);
      expect(`${job.failedReason} ${(job.stacktrace ?? []).join(' ')}`).not.toContain(address);
      const metrics = await (await fetch(`http://127.0.0.1:${main.worker?.port}/metrics`)).text();
      expect(metrics).not.toContain(address);
      await job.remove();
    } finally {
      await sql(db, 'alter table users drop constraint test_no_blocked');
    }
  });
});
