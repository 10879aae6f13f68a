import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { clerkId, sampleDeletedEvent, sampleUserEvent } from '../src/clerk/sample-events.ts';
import type { ClerkEvent } from '../src/queue/queue.ts';
import { applyUserChanges, type ChangeOutcome } from '../src/users/apply-user-changes.ts';
import type { UserChange } from '../src/users/user-change.ts';
import { toJobEvent } from '../src/webhooks/job-event.ts';
import { changeOf } from '../src/workers/webhook-worker.ts';
import { countRows, openPoolConnections, sql } from './support/database.ts';
import { useTestDatabase } from './support/hooks.ts';
import {
  defaultPreferences,
  expectNewUserStored,
  storedPreferences,
  storedUser,
} from './support/stored-users.ts';

const db = useTestDatabase();

/** Commits a change in a unit of work of its own, as the worker does with batches of one. */
async function commit(change: UserChange): Promise<ChangeOutcome> {
  const [outcome] = await applyUserChanges(db.em.fork(), [change]);
  return outcome as ChangeOutcome;
}

/** What the worker does with a job's event: its change, committed. */
function apply(event: ClerkEvent): Promise<ChangeOutcome> {
  const change = changeOf(event);
  if (!change) throw new Error(`${event.type} is not a user event`);
  return commit(change);
}

/** What the worker receives: the event as the receiver trims it for the queue. */
function jobEvent(event: object): ClerkEvent {
  return toJobEvent(event as ClerkEvent);
}

interface UserFields {
  email?: string | null;
  /** false: Clerk has not verified the address (and it is not primary). */
  verified?: boolean;
  timezone?: string;
  at?: number;
}

function userEvent(type: 'user.created' | 'user.updated', id: string, user: UserFields) {
  const event = sampleUserEvent(type, {
    id,
    email: user.email,
    timezone: user.timezone,
    updatedAt: user.at,
  });
  if (user.verified === false) {
    for (const address of event.data.email_addresses)
      Object.assign(address, { verification: null });
    event.data.primary_email_address_id = null;
  }
  return jobEvent(event);
}

const created = (id: string, user: UserFields) => userEvent('user.created', id, user);
const updated = (id: string, user: UserFields) => userEvent('user.updated', id, user);
const tombstones = (clerkUserId: string) =>
  countRows(db, 'deleted_clerk_users', 'clerk_user_id = ?', [clerkUserId]);

describe('user.created', () => {
  it('stores the user and its default preferences', async () => {
    const id = clerkId('user');
    const outcome = await apply(
      created(id, { email: 'created@example.com', timezone: 'Europe/Paris' }),
    );

    expect(outcome).toBe('created');
    await expectNewUserStored(db, id, { email: 'created@example.com', timezone: 'Europe/Paris' });
  });

  it('is unchanged when delivered again', async () => {
    const id = clerkId('user');
    const event = created(id, { email: 'again@example.com', at: 1_000 });
    expect(await apply(event)).toBe('created');
    expect(await apply(event)).toBe('unchanged');
    expect(await countRows(db, 'users', 'clerk_user_id = ?', [id])).toBe(1);
    expect(await storedPreferences(db, id)).toHaveLength(1);
  });

  it.each([
    ['has no email address', { email: null }],
    [
      'has only an address Clerk has not verified',
      { email: 'unverified@example.com', verified: false },
    ],
  ])('stores nothing, with outcome no_email, when the user %s', async (_, user) => {
    const id = clerkId('user');
    expect(await apply(created(id, user))).toBe('no_email');
    expect(await countRows(db, 'users', 'clerk_user_id = ?', [id])).toBe(0);
    expect(await tombstones(id)).toBe(0);
  });

  it('fails for good on a payload without a user id', async () => {
    const event = created(clerkId('user'), {});
    delete event.data.id;
    expect(() => changeOf(event)).toThrow(UnrecoverableError);
    expect(() => changeOf(event)).toThrow('invalid user.created payload: bad id');
  });

  it.each([
    ['a NUL in the user id', created(`${clerkId('user')}\u0000`, {}), 'bad id'],
    [
      'a lone UTF-16 surrogate in an email address',
      created(clerkId('user'), { email: 'lone\ud800@example.com' }),
      'bad email_addresses.0.email_address',
    ],
    ['an updated_at past the last date', created(clerkId('user'), { at: 9e15 }), 'bad updated_at'],
  ])('fails for good on what PostgreSQL cannot store: %s', (_, event, fields) => {
    expect(() => changeOf(event)).toThrow(UnrecoverableError);
    expect(() => changeOf(event)).toThrow(`invalid user.created payload: ${fields}`);
  });
});

describe('user.updated', () => {
  it('changes email and timezone but never touches customised preferences', async () => {
    const id = clerkId('user');
    await apply(created(id, { email: 'before@example.com', timezone: 'Europe/Paris', at: 1_000 }));
    await sql(
      db,
      `update user_preferences set theme = 'medieval', onboarding_completed = true,
         communication_preferences = '{"email":false,"sms":true,"in_app":false}'
       where user_id = (select id from users where clerk_user_id = ?)`,
      [id],
    );

    const outcome = await apply(
      updated(id, { email: 'after@example.com', timezone: 'Asia/Tokyo', at: 2_000 }),
    );

    expect(outcome).toBe('updated');
    expect(await storedUser(db, id)).toMatchObject({
      email: 'after@example.com',
      timezone: 'Asia/Tokyo',
    });
    expect(await storedPreferences(db, id)).toEqual([
      {
        ...defaultPreferences('Europe/Paris'),
        theme: 'medieval',
        communication_preferences: { email: false, sms: true, in_app: false },
        onboarding_completed: true,
      },
    ]);
  });

  it('creates a missing user with default preferences, and the older user.created is stale', async () => {
    const id = clerkId('user');
    expect(
      await apply(
        updated(id, { email: 'newer@example.com', timezone: 'America/Chicago', at: 2_000 }),
      ),
    ).toBe('created');
    expect(await apply(created(id, { email: 'older@example.com', at: 1_000 }))).toBe('stale');

    await expectNewUserStored(db, id, { email: 'newer@example.com', timezone: 'America/Chicago' });
  });

  it('never lets an older update overwrite a newer one', async () => {
    const id = clerkId('user');
    await apply(created(id, { email: 'v1@example.com', at: 1_000 }));
    await apply(updated(id, { email: 'v3@example.com', at: 3_000 }));

    const outcome = await apply(
      updated(id, { email: 'v2@example.com', timezone: 'Asia/Tokyo', at: 2_000 }),
    );

    expect(outcome).toBe('stale');
    expect(await storedUser(db, id)).toMatchObject({ email: 'v3@example.com', timezone: 'UTC' });
  });
});

describe('user.deleted', () => {
  it('removes the user and its preferences and leaves a tombstone', async () => {
    const id = clerkId('user');
    await apply(created(id, { email: 'gone@example.com' }));
    const userId = (await storedUser(db, id))?.id;

    expect(await apply(jobEvent(sampleDeletedEvent(id)))).toBe('deleted');

    expect(await storedUser(db, id)).toBeUndefined();
    expect(await countRows(db, 'user_preferences', 'user_id = ?', [userId])).toBe(0);
    expect(await tombstones(id)).toBe(1);
    expect(await commit({ kind: 'delete', clerkUserId: id })).toBe('absent');
    expect(await tombstones(id)).toBe(1);
  });

  it('keeps a late user.created or user.updated from bringing the user back', async () => {
    const id = clerkId('user');
    const late = Date.now() + 60_000;
    await apply(created(id, { email: 'late@example.com', at: 1_000 }));
    await apply(jobEvent(sampleDeletedEvent(id)));

    expect(await apply(created(id, { email: 'late@example.com', at: late }))).toBe(
      'deleted_earlier',
    );
    expect(await apply(updated(id, { email: 'late@example.com', at: late }))).toBe(
      'deleted_earlier',
    );
    expect(await countRows(db, 'users', 'clerk_user_id = ?', [id])).toBe(0);
  });

  it('recognises a deletion that arrives before the user was ever created', async () => {
    const id = clerkId('user');
    expect(await apply(jobEvent(sampleDeletedEvent(id)))).toBe('absent');
    expect(await apply(created(id, { email: 'never@example.com' }))).toBe('deleted_earlier');
    expect(await countRows(db, 'users', 'clerk_user_id = ?', [id])).toBe(0);
  });
});

describe('concurrency', () => {
  it('stores one user and one preferences row from fifty simultaneous copies', async () => {
    const id = clerkId('user');
    const event = created(id, { email: 'fifty@example.com', at: 5_000 });
    await openPoolConnections(db);

    const outcomes = await Promise.all(Array.from({ length: 50 }, () => apply(event)));

    expect(outcomes.filter((outcome) => outcome === 'created')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === 'unchanged')).toHaveLength(49);
    expect(await countRows(db, 'users', 'clerk_user_id = ?', [id])).toBe(1);
    expect(await storedPreferences(db, id)).toHaveLength(1);
  });

  it('leaves the user deleted whatever order a deletion and its copies of user.created run in', async () => {
    const id = clerkId('user');
    const create = changeOf(created(id, { email: 'race@example.com' })) as UserChange;
    await openPoolConnections(db);

    await Promise.all([
      ...Array.from({ length: 20 }, () => commit(create)),
      commit({ kind: 'delete', clerkUserId: id }),
      ...Array.from({ length: 20 }, () => commit(create)),
    ]);

    expect(await countRows(db, 'users', 'clerk_user_id = ?', [id])).toBe(0);
    expect(await tombstones(id)).toBe(1);
  });
});
