import type { PostgreSqlConnection } from '@mikro-orm/postgresql';
import { describe, expect, it } from 'vitest';
import { clerkId } from '../src/clerk/sample-events.ts';
import {
  type ApplyOptions,
  applyUserChanges,
  type ChangeOutcome,
  decideUpsert,
  type UserChange,
} from '../src/users/apply-user-changes.ts';
import { clerkUser, remove, upsert } from './support/clerk-user.ts';
import { countRows, holdUserLock, sql } from './support/database.ts';
import { useTestDatabase } from './support/hooks.ts';
import { defaultPreferences, snapshotTables, tombstoneIds } from './support/stored-users.ts';
import { waitFor } from './support/wait.ts';

const db = useTestDatabase({ emptyEachTest: true });

/** Applies changes in a fresh unit of work, as a worker or a backfill page does. */
function apply(changes: UserChange[], options: ApplyOptions = {}) {
  return applyUserChanges(db.em.fork(), changes, options);
}

interface StoredRow {
  clerk_user_id: string;
  email: string;
  timezone: string | null;
  clerk_updated_at: number | null;
  theme: string | null;
  custom_hours: unknown;
  communication_preferences: unknown;
  onboarding_completed: boolean | null;
}

/** Every user with its preferences (one row per pair; a user without preferences shows nulls). */
async function storedRows(): Promise<StoredRow[]> {
  return sql<StoredRow>(
    db,
    `select u.clerk_user_id, u.email, u.timezone,
            (extract(epoch from u.clerk_updated_at) * 1000)::float8 as clerk_updated_at,
            p.theme, p.custom_hours,
            p.communication_preferences, p.onboarding_completed
       from users u left join user_preferences p on p.user_id = u.id
      order by u.clerk_user_id`,
  );
}

/**
 * Ids that sort in the order of their letter, so expected rows read in a fixed order.
 * `existing` and `doomed` are stored before the batch runs.
 */
function mixedBatch() {
  const ids = {
    added: `user_a_${clerkId('x').slice(2)}`,
    batchDup: `user_b_${clerkId('x').slice(2)}`,
    noEmail: `user_c_${clerkId('x').slice(2)}`,
    doomed: `user_d_${clerkId('x').slice(2)}`,
    existing: `user_e_${clerkId('x').slice(2)}`,
    fleeting: `user_f_${clerkId('x').slice(2)}`,
    neverStored: `user_g_${clerkId('x').slice(2)}`,
  };
  const seed = [
    upsert(clerkUser(ids.existing, { email: 'existing.old@example.com', at: 1_000 })),
    upsert(clerkUser(ids.doomed, { email: 'doomed@example.com', at: 1_000 })),
  ];
  const changes: UserChange[] = [
    upsert(clerkUser(ids.added, { email: 'added@example.com', timezone: 'Europe/Paris' })),
    upsert(clerkUser(ids.existing, { email: 'existing.new@example.com', at: 2_000 })),
    remove(ids.doomed),
    upsert(clerkUser(ids.fleeting, { email: 'fleeting@example.com' })),
    remove(ids.fleeting),
    upsert(clerkUser(ids.batchDup, { email: 'dup.v1@example.com', timezone: 'Asia/Tokyo' })),
    upsert(clerkUser(ids.batchDup, { email: 'dup.v1@example.com', timezone: 'Asia/Tokyo' })),
    upsert(clerkUser(ids.batchDup, { email: 'dup.v3@example.com', at: 3_000 })),
    upsert(clerkUser(ids.batchDup, { email: 'dup.v2@example.com', at: 2_000 })),
    upsert(clerkUser(ids.batchDup, { email: 'dup.v3@example.com', at: 4_000 })),
    upsert(clerkUser(ids.batchDup, { email: 'dup.v3@example.com', at: 3_500 })),
    upsert(clerkUser(ids.noEmail, { email: null })),
    remove(ids.neverStored),
    upsert(clerkUser(ids.doomed, { email: 'doomed@example.com', at: 9_000 })),
    upsert(clerkUser(ids.fleeting, { email: 'fleeting@example.com', at: 9_000 })),
  ];
  const outcomes: ChangeOutcome[] = [
    'created',
    'updated',
    'deleted',
    'created',
    'deleted',
    'created',
    'unchanged',
    'updated',
    'stale',
    'unchanged',
    'stale',
    'no_email',
    'absent',
    'deleted_earlier',
    'deleted_earlier',
  ];
  return { ids, seed, changes, outcomes };
}

describe('applyUserChanges', () => {
  it('has PostgreSQL end a transaction whose client went silent, and free its locks', async () => {
    const id = clerkId('user');
    const silent = db.em.fork().transactional(async (tx) => {
      await applyUserChanges(tx, [upsert(clerkUser(id))], { timeoutMs: 200 });
      // The client says nothing for longer than the timeout, inside the transaction.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await tx.execute('select 1');
    });

    await expect(silent).rejects.toThrow(
      /idle-in-transaction timeout|connection error|Connection terminated/,
    );
    // Nothing was written, and the user's lock is free again.
    expect(await apply([upsert(clerkUser(id))])).toEqual(['created']);
    // The dead connection left the pool instead of staying checked out for good.
    const pool = await (db.em.getConnection() as PostgreSqlConnection).getNativeClient();
    expect(pool.totalCount - pool.idleCount).toBe(0);
  });

  it.each([
    ['the unit of work', { bulk: false }],
    ['bulk writes', { bulk: true }],
  ])(
    'applies a mixed batch in input order and stores exactly the right rows, through %s',
    async (_, options) => {
      const { ids, seed, changes, outcomes } = mixedBatch();
      expect(await apply(seed, options)).toEqual(['created', 'created']);

      expect(await apply(changes, options)).toEqual(outcomes);

      expect(await storedRows()).toEqual([
        {
          clerk_user_id: ids.added,
          email: 'added@example.com',
          timezone: 'Europe/Paris',
          clerk_updated_at: 1_000,
          ...defaultPreferences('Europe/Paris'),
        },
        {
          clerk_user_id: ids.batchDup,
          email: 'dup.v3@example.com',
          timezone: 'UTC',
          clerk_updated_at: 4_000,
          // Preferences are made once, with the timezone the user was created with.
          ...defaultPreferences('Asia/Tokyo'),
        },
        {
          clerk_user_id: ids.existing,
          email: 'existing.new@example.com',
          timezone: 'UTC',
          clerk_updated_at: 2_000,
          ...defaultPreferences('UTC'),
        },
      ]);
      expect(await countRows(db, 'user_preferences')).toBe(3);
      expect(await tombstoneIds(db)).toEqual([ids.doomed, ids.fleeting, ids.neverStored].sort());
      // The user changed in the second transaction shows it; the one created there does not.
      const [existing, added] = await sql<{ updated_later: boolean }>(
        db,
        `select updated_at > created_at as updated_later from users
          where clerk_user_id in (?, ?) order by clerk_user_id desc`,
        [ids.existing, ids.added],
      );
      expect([existing?.updated_later, added?.updated_later]).toEqual([true, false]);
    },
  );

  it('waits for a user held by another transaction, then reads what that one committed', async () => {
    const id = clerkId('user');
    const holder = await holdUserLock(db, id, (tx) =>
      applyUserChanges(tx, [upsert(clerkUser(id, { email: 'first@example.com', at: 1_000 }))]),
    );
    const waiting = apply([upsert(clerkUser(id, { email: 'second@example.com', at: 2_000 }))]);
    await waitFor(
      async () => (await countRows(db, 'pg_locks', "locktype = 'advisory' and not granted")) > 0,
      5_000,
      'the second change to wait for the lock',
    );

    await holder.release();

    // Read before the wait, the user would look new, and its insert would fail as a duplicate.
    expect(await waiting).toEqual(['updated']);
    expect(await storedRows()).toEqual([
      expect.objectContaining({ clerk_user_id: id, email: 'second@example.com' }),
    ]);
  });

  it('with dryRun, reports the same outcomes and writes nothing', async () => {
    const { seed, changes, outcomes } = mixedBatch();
    await apply(seed);
    const before = await snapshotTables(db);

    expect(await apply(changes, { dryRun: true })).toEqual(outcomes);
    expect(await snapshotTables(db)).toEqual(before);

    expect(await apply(changes)).toEqual(outcomes);
  });

  it('lets Clerk win over a local edit at the same updated_at, and ignores an older one', async () => {
    const id = clerkId('user');
    await apply([upsert(clerkUser(id, { email: 'clerk@example.com', at: 5_000 }))]);
    await sql(db, `update users set email = 'local.edit@example.com' where clerk_user_id = ?`, [
      id,
    ]);

    expect(await apply([upsert(clerkUser(id, { email: 'clerk@example.com', at: 4_999 }))])).toEqual(
      ['stale'],
    );
    expect((await storedRows())[0]?.email).toBe('local.edit@example.com');

    expect(await apply([upsert(clerkUser(id, { email: 'clerk@example.com', at: 5_000 }))])).toEqual(
      ['updated'],
    );
    expect(await storedRows()).toMatchObject([
      { email: 'clerk@example.com', clerk_updated_at: 5_000 },
    ]);
  });

  it('records a newer Clerk timestamp even when nothing else changed', async () => {
    const id = clerkId('user');
    await apply([upsert(clerkUser(id, { at: 1_000 }))]);

    expect(await apply([upsert(clerkUser(id, { at: 7_000 }))])).toEqual(['unchanged']);
    expect((await storedRows())[0]?.clerk_updated_at).toBe(7_000);
    expect(await apply([upsert(clerkUser(id, { email: 'late@example.com', at: 6_000 }))])).toEqual([
      'stale',
    ]);
  });

  it('gives a stored user without preferences its defaults, and never touches existing ones', async () => {
    const bare = clerkId('user');
    const customised = clerkId('user');
    await apply([
      upsert(clerkUser(bare, { timezone: 'America/Chicago' })),
      upsert(clerkUser(customised)),
    ]);
    await sql(
      db,
      'delete from user_preferences where user_id = (select id from users where clerk_user_id = ?)',
      [bare],
    );
    await sql(
      db,
      `update user_preferences set theme = 'medieval', onboarding_completed = true
        where user_id = (select id from users where clerk_user_id = ?)`,
      [customised],
    );

    expect(
      await apply([
        upsert(clerkUser(bare, { timezone: 'America/Chicago' })),
        upsert(clerkUser(customised, { timezone: 'Asia/Tokyo', at: 2_000 })),
      ]),
    ).toEqual(['unchanged', 'updated']);

    const rows = new Map((await storedRows()).map((row) => [row.clerk_user_id, row]));
    expect(rows.get(bare)).toMatchObject(defaultPreferences('America/Chicago'));
    expect(rows.get(customised)).toMatchObject({
      timezone: 'Asia/Tokyo',
      theme: 'medieval',
      onboarding_completed: true,
    });
  });

  it('does nothing for an empty batch', async () => {
    expect(await apply([])).toEqual([]);
    expect(await apply([], { dryRun: true })).toEqual([]);
  });
});

describe('decideUpsert', () => {
  const user = <T extends string | null>([email, timezone, ms]: [string, T, number | null]) => ({
    email,
    timezone,
    clerkUpdatedAt: ms === null ? null : new Date(ms),
  });
  type Stored = [string, string | null, number | null];
  type Incoming = [string, string, number | null];

  it.each<[string, Stored | undefined, Incoming, string]>([
    ['nothing stored', undefined, ['a@x.io', 'UTC', 1], 'created'],
    ['older than stored', ['a@x.io', 'UTC', 2], ['b@x.io', 'UTC', 1], 'stale'],
    ['no timestamp, stored has one', ['a@x.io', 'UTC', 2], ['b@x.io', 'UTC', null], 'stale'],
    ['same time, same data', ['a@x.io', 'UTC', 2], ['a@x.io', 'UTC', 2], 'unchanged'],
    ['same time, other email', ['a@x.io', 'UTC', 2], ['b@x.io', 'UTC', 2], 'updated'],
    ['same time, other timezone', ['a@x.io', 'UTC', 2], ['a@x.io', 'Asia/Tokyo', 2], 'updated'],
    ['newer, same data', ['a@x.io', 'UTC', 2], ['a@x.io', 'UTC', 3], 'unchanged'],
    ['newer, other email', ['a@x.io', 'UTC', 2], ['b@x.io', 'UTC', 3], 'updated'],
    ['stored without timestamp', ['a@x.io', 'UTC', null], ['b@x.io', 'UTC', 1], 'updated'],
    ['neither has a timestamp', ['a@x.io', 'UTC', null], ['a@x.io', 'UTC', null], 'unchanged'],
    ['stored timezone null', ['a@x.io', null, 1], ['a@x.io', 'UTC', 1], 'updated'],
  ])('%s', (_case, stored, incoming, expected) => {
    expect(decideUpsert(stored && user(stored), user(incoming))).toBe(expected);
  });
});
