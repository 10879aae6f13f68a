import { existsSync } from 'node:fs';
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ClerkApiError } from '../src/errors.ts';
import {
  type BackfillCounts,
  type BackfillOptions,
  emptyCounts,
  formatBackfillSummary,
  runBackfill,
} from '../src/sync/backfill.ts';
import type { Progress } from '../src/sync/progress.ts';
import { applyUserChanges } from '../src/users/apply-user-changes.ts';
import { upsertOf } from '../src/users/user-change.ts';
import { runCommand, runNpmScript } from './support/cli.ts';
import { fakeClerkClient } from './support/config.ts';
import { countRows, holdTransaction, sql } from './support/database.ts';
import {
  type FakeClerkApi,
  type FakeUser,
  fakeClerkEnv,
  generateUsers,
  type InjectedFault,
  startFakeClerkApi,
  userJson,
} from './support/fake-clerk-api.ts';
import { cleanUpAfterEach, useTestDatabase } from './support/hooks.ts';
import {
  defaultPreferences,
  expectUserRows,
  snapshotTables,
  storedPreferences,
  userRows,
  usersWithDefaultPreferences,
} from './support/stored-users.ts';
import { waitFor } from './support/wait.ts';

/** Five pages, the last one short. */
const USER_COUNT = 2_345;
const WITHOUT_EMAIL = [7, 1_500];
const STORABLE = USER_COUNT - WITHOUT_EMAIL.length;

const db = useTestDatabase({ emptyEachTest: true });
const cleanUpLater = cleanUpAfterEach();

/**
 * Clerk's users, oldest first: a third with Europe/Paris in public metadata, the rest without
 * a timezone; two without a usable email address (one has none, one only an address Clerk has
 * not verified, which is never stored); one with a timezone that is no IANA name and one
 * spelled in lower case.
 */
function clerkUsers(): FakeUser[] {
  const users = generateUsers(USER_COUNT);
  const [withoutAddress = 0, unverified = 0] = WITHOUT_EMAIL;
  user(users, withoutAddress).email = null;
  user(users, unverified).emailVerified = false;
  user(users, 4).timezone = 'Mars/Olympus_Mons';
  user(users, 5).timezone = 'asia/tokyo';
  return users;
}

function user(users: FakeUser[], index: number): FakeUser {
  const found = users[index];
  if (!found) throw new Error(`no user at ${index}`);
  return found;
}

const CANONICAL_TIMEZONE: Record<string, string> = {
  'Europe/Paris': 'Europe/Paris',
  'asia/tokyo': 'Asia/Tokyo',
};

/** The row each storable Clerk user must become. */
function expectedRow(clerk: FakeUser) {
  return {
    clerk_user_id: clerk.id,
    email: clerk.email,
    timezone: CANONICAL_TIMEZONE[clerk.timezone ?? ''] ?? 'UTC',
    clerk_updated_at: clerk.updatedAt,
  };
}

function expectedRows(users: FakeUser[]) {
  return users.filter((clerk) => clerk.email && clerk.emailVerified !== false).map(expectedRow);
}

const expectExactRows = (users: FakeUser[]) => expectUserRows(db, expectedRows(users));

async function checkpointOffset(): Promise<number | undefined> {
  const [row] = await sql<{ next_offset: number }>(db, 'select next_offset from sync_checkpoints');
  return row?.next_offset;
}

async function startFake(faults: InjectedFault[] = [], users = clerkUsers()) {
  const fake = await startFakeClerkApi(users, faults);
  cleanUpLater(() => fake.close());
  return fake;
}

interface RunRecord {
  retries: [string, number][];
  waits: number[];
  progress: string[];
}

/** runBackfill against the fake API, with retry waits recorded instead of slept. */
async function backfill(api: FakeClerkApi, options: Partial<BackfillOptions> = {}) {
  const record: RunRecord = { retries: [], waits: [], progress: [] };
  const progress: Progress = {
    start: (total, done) => record.progress.push(`start ${done}/${total}`),
    update: (done, total) => record.progress.push(`${done}/${total}`),
    note: (message) => record.progress.push(`note ${message}`),
    stop: () => record.progress.push('stop'),
  };
  const result = await runBackfill({
    em: db.em,
    client: fakeClerkClient(api),
    progress,
    api: {
      onRetry: (reason, waitMs) => record.retries.push([reason, waitMs]),
      wait: async (ms) => record.waits.push(ms),
    },
    ...options,
  });
  return { result, ...record };
}

/**
 * A backfill whose first page, written, waits to store its checkpoint on a row another
 * transaction holds; returned once that page waits and the second page has written its rows
 * and waits, in its open transaction, for the first to commit.
 */
async function startWithFirstPageBlocked(api: FakeClerkApi) {
  await sql(
    db,
    `insert into sync_checkpoints (name, next_offset, updated_at) values ('backfill', 0, now())`,
  );
  const lock = await holdTransaction(db, (tx) =>
    tx.execute(`select 1 from sync_checkpoints where name = 'backfill' for update`),
  );
  const run = backfill(api);
  run.catch(() => undefined);
  try {
    await waitFor(
      async () => {
        const [row] = await sql<{ written: number; waiting: number }>(
          db,
          `select count(*) filter (where a.state = 'idle in transaction'
                                     and l.relation = 'users'::regclass
                                     and l.mode = 'RowExclusiveLock')::int as written,
                  count(*) filter (where a.wait_event_type = 'Lock')::int as waiting
             from pg_stat_activity a left join pg_locks l using (pid)
            where a.datname = current_database()`,
        );
        return row?.written === 1 && row.waiting > 0;
      },
      10_000,
      'the first page waiting on the checkpoint, the second written and waiting to commit',
    );
  } catch (error) {
    await lock.release();
    throw error;
  }
  return { lock, run };
}

/** The GET /v1/users requests the fake has answered since `from`, as their query parameters. */
function listRequests(api: FakeClerkApi, from = 0): URLSearchParams[] {
  return api.requests
    .slice(from)
    .filter((request) => request.startsWith('GET /v1/users?'))
    .map((request) => new URL(request.slice('GET '.length), 'http://fake').searchParams);
}

/** The client leaves a zero offset out of the query. */
function offsetOf(query: URLSearchParams | undefined): number {
  return Number(query?.get('offset') ?? 0);
}

function counts(overrides: Partial<BackfillCounts>): BackfillCounts {
  return { ...emptyCounts(), ...overrides };
}

/** The Clerk user as an upsert change, optionally altered, for storing state beforehand. */
const upsertOfClerk = (clerk: FakeUser, changes: Partial<FakeUser> = {}) =>
  upsertOf(userJson({ ...clerk, ...changes }));

describe('runBackfill', () => {
  it('imports every user exactly, riding out a 429, a 500 and a dropped connection; a second run changes nothing', async () => {
    const api = await startFake([
      { onListRequest: 2, status: 429, retryAfterSeconds: 7 },
      { onListRequest: 4, status: 500 },
      { onListRequest: 6, status: 'network' },
    ]);

    const { result, retries, waits, progress } = await backfill(api);

    expect(result).toMatchObject({
      counts: counts({ created: STORABLE, no_email: WITHOUT_EMAIL.length }),
      total: USER_COUNT,
      seen: USER_COUNT,
      resumedFrom: 0,
    });
    await expectExactRows(api.users);
    expect(await countRows(db, 'deleted_clerk_users')).toBe(0);
    expect(await checkpointOffset()).toBeUndefined();

    expect(retries).toEqual([
      ['GET /v1/users offset 450: rate limited (429)', 7_000],
      ['GET /v1/users offset 900: status 500', 500],
      ['GET /v1/users offset 1350: network error', 500],
    ]);
    expect(waits).toEqual([7_000, 500, 500]);

    const requests = listRequests(api);
    // Each page overlaps the previous one by PAGE_OVERLAP (50) users; a short page is the last.
    expect(requests.map(offsetOf)).toEqual([0, 450, 450, 900, 900, 1350, 1350, 1800, 2250]);
    for (const query of requests) {
      expect(query.get('limit')).toBe('500');
      expect(query.get('order_by')).toBe('+created_at');
    }
    expect(api.requests.filter((request) => request === 'GET /v1/users/count')).toHaveLength(
      requests.length,
    );
    expect(progress).toEqual([
      'start 0/2345',
      '500/2345',
      '950/2345',
      '1400/2345',
      '1850/2345',
      '2300/2345',
      '2345/2345',
      'stop',
    ]);

    const summary = formatBackfillSummary(result, false);
    expect(summary).toContain('backfill finished: 2345 users in');
    expect(summary).toContain(`created    ${STORABLE}`);
    expect(summary).toContain('unchanged  0');
    expect(summary).toMatch(/skipped {4}2 \(.*no email address: 2/);

    const before = await snapshotTables(db);
    const second = await backfill(api);
    expect(second.result).toMatchObject({
      counts: counts({ unchanged: STORABLE, no_email: WITHOUT_EMAIL.length }),
      resumedFrom: 0,
    });
    expect(await snapshotTables(db)).toEqual(before);
  });

  it('never resurrects a deleted user nor overwrites newer data, and updates older data', async () => {
    const users = clerkUsers();
    const [deleted, newer, older, same] = [10, 20, 30, 40].map((index) => user(users, index));
    if (!deleted || !newer || !older || !same) throw new Error('fixture');
    await applyUserChanges(db.em.fork(), [
      { kind: 'delete', clerkUserId: deleted.id },
      upsertOfClerk(newer, { email: 'newer@example.com', updatedAt: newer.updatedAt + 60_000 }),
      upsertOfClerk(older, {
        email: 'older@example.com',
        timezone: 'Asia/Tokyo',
        updatedAt: older.updatedAt - 60_000,
      }),
      upsertOfClerk(same),
    ]);
    const api = await startFake([], users);

    const { result } = await backfill(api);

    expect(result.counts).toEqual(
      counts({
        created: STORABLE - 4,
        updated: 1,
        unchanged: 1,
        stale: 1,
        deleted_earlier: 1,
        no_email: WITHOUT_EMAIL.length,
      }),
    );
    const expected = expectedRows(users.filter((clerk) => clerk !== deleted)).map((row) =>
      row.clerk_user_id === newer.id
        ? { ...row, email: 'newer@example.com', clerk_updated_at: newer.updatedAt + 60_000 }
        : row,
    );
    expect(await userRows(db)).toEqual(expected);
    expect(await countRows(db, 'user_preferences')).toBe(expected.length);
    // The older user's preferences were made with its old timezone, and are never overwritten.
    expect(await usersWithDefaultPreferences(db)).toBe(expected.length - 1);
    expect(await storedPreferences(db, older.id)).toEqual([defaultPreferences('Asia/Tokyo')]);
    expect(formatBackfillSummary(result, false)).toContain(
      'skipped    4 (older than stored: 1, deleted by a webhook: 1, no email address: 2, malformed: 0)',
    );
  });

  it('is safe while webhooks delete and update users', async () => {
    const users = clerkUsers();
    const api = await startFake([], users);
    const deletedByWebhook = users.filter((_, index) => index % 97 === 1);
    const updatedByWebhook = users.filter((_, index) => index % 89 === 2);
    const webhooks = (async () => {
      for (const clerk of deletedByWebhook) {
        await applyUserChanges(db.em.fork(), [{ kind: 'delete', clerkUserId: clerk.id }]);
      }
      for (const clerk of updatedByWebhook) {
        await applyUserChanges(db.em.fork(), [
          upsertOfClerk(clerk, { email: `webhook.${clerk.id}@example.com`, updatedAt: Date.now() }),
        ]);
      }
    })();

    await Promise.all([backfill(api), webhooks]);

    const gone = new Set(deletedByWebhook.map((clerk) => clerk.id));
    const rows = await userRows(db);
    expect(rows.filter((row) => gone.has(String(row.clerk_user_id)))).toEqual([]);
    expect(rows).toHaveLength(STORABLE - gone.size);
    const emails = new Map(rows.map((row) => [row.clerk_user_id, row.email]));
    for (const clerk of updatedByWebhook) {
      if (clerk.email && !gone.has(clerk.id))
        expect(emails.get(clerk.id)).toBe(`webhook.${clerk.id}@example.com`);
    }
    expect(await usersWithDefaultPreferences(db)).toBe(rows.length);
  });

  it('writes the next page while the one before waits on a lock, and commits them in order', async () => {
    const api = await startFake();
    const blocked = await startWithFirstPageBlocked(api);

    // Nothing is committed yet: neither page, nor a checkpoint past the start.
    expect(await countRows(db, 'users')).toBe(0);
    expect(await checkpointOffset()).toBe(0);
    await blocked.lock.release();
    const { result, progress } = await blocked.run;

    expect(result.counts).toEqual(counts({ created: STORABLE, no_email: WITHOUT_EMAIL.length }));
    expect(progress.slice(0, 3)).toEqual(['start 0/2345', '500/2345', '950/2345']);
    await expectExactRows(api.users);
  });

  it('rolls back the page written meanwhile when the one before it fails', async () => {
    const api = await startFake();
    const blocked = await startWithFirstPageBlocked(api);

    await sql(
      db,
      `select pg_cancel_backend(pid) from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`,
    );

    await expect(blocked.run).rejects.toThrow(/canceling statement/);
    await blocked.lock.release();
    expect(await countRows(db, 'users')).toBe(0);
    expect(await checkpointOffset()).toBe(0);
  });

  it('misses no user when users are deleted in Clerk during the run, however many', async () => {
    const api = await startFake();
    const deletedInClerk: string[] = [];
    // Users already read disappear from Clerk's list, moving everyone after them down: first
    // fewer than the pages overlap, then more.
    api.beforeListRequest = (requestNumber) => {
      const count = { 3: 10, 5: 120 }[requestNumber] ?? 0;
      const removed = new Set(api.users.slice(100, 100 + count).map((clerk) => clerk.id));
      deletedInClerk.push(...removed);
      api.users = api.users.filter((clerk) => !removed.has(clerk.id));
    };

    const { result } = await backfill(api);

    expect(deletedInClerk).toHaveLength(130);
    // Every user was read once, the deleted ones before they went: nothing was skipped.
    await expectExactRows(clerkUsers());
    expect(result.counts).toEqual(counts({ created: STORABLE, no_email: WITHOUT_EMAIL.length }));
    expect(result.seen).toBe(USER_COUNT);
  });

  it('resumes an interrupted run at its last committed page, which it reads again', async () => {
    const api = await startFake([{ onListRequest: 3, status: 401 }]);

    const interrupted = backfill(api);
    await expect(interrupted).rejects.toBeInstanceOf(ClerkApiError);
    await expect(interrupted).rejects.toThrow('GET /v1/users offset 900 failed with status 401');
    expect(await checkpointOffset()).toBe(950);
    expect(await userRows(db)).toEqual(expectedRows(api.users.slice(0, 950)));

    const requestsBefore = api.requests.length;
    const { result, progress } = await backfill(api);

    expect(offsetOf(listRequests(api, requestsBefore)[0])).toBe(450);
    expect(result).toMatchObject({
      resumedFrom: 950,
      seen: USER_COUNT - 450,
      counts: counts({ created: STORABLE - 949, unchanged: 500, no_email: 1 }),
    });
    expect(progress[0]).toBe('start 950/2345');
    expect(formatBackfillSummary(result, false)).toContain('resumed after 950');
    await expectExactRows(api.users);
    expect(await checkpointOffset()).toBeUndefined();
  });

  it('counts a user with text no database can hold as malformed, and imports the others', async () => {
    const [good, loneSurrogate, nul] = generateUsers(3) as [FakeUser, FakeUser, FakeUser];
    const api = await startFake(
      [],
      [
        good,
        // A lone UTF-16 surrogate cannot be encoded as UTF-8; nor can PostgreSQL hold NUL.
        { ...loneSurrogate, email: 'lone\ud800surrogate@example.com' },
        { ...nul, id: `${nul.id}\u0000` },
      ],
    );

    const { result } = await backfill(api);

    expect(result.counts).toEqual(counts({ created: 1, invalid: 2 }));
    expect(formatBackfillSummary(result, false)).toContain('malformed: 2');
    await expectExactRows([good]);
  });

  it('writes nothing on a dry run, not even a checkpoint', async () => {
    const api = await startFake([{ onListRequest: 2, status: 503 }]);

    const { result, retries } = await backfill(api, { dryRun: true });

    expect(result.counts).toEqual(counts({ created: STORABLE, no_email: WITHOUT_EMAIL.length }));
    expect(retries).toHaveLength(1);
    for (const table of ['users', 'user_preferences', 'deleted_clerk_users', 'sync_checkpoints'])
      expect(await countRows(db, table)).toBe(0);
    const summary = formatBackfillSummary(result, true);
    expect(summary).toContain('backfill dry run (nothing written)');
    expect(summary).toContain(`would create    ${STORABLE}`);
  });

  it('after an interruption, reads from the first page on a dry run (keeping the checkpoint) and with restart', async () => {
    const api = await startFake([{ onListRequest: 3, status: 400 }]);
    await expect(backfill(api)).rejects.toThrow(/status 400/);
    expect(await checkpointOffset()).toBe(950);
    const before = await snapshotTables(db);
    const fromTheStart = counts({
      created: STORABLE - 949,
      unchanged: 949,
      no_email: WITHOUT_EMAIL.length,
    });

    let requestsBefore = api.requests.length;
    const dryRun = await backfill(api, { dryRun: true });

    expect(offsetOf(listRequests(api, requestsBefore)[0])).toBe(0);
    expect(dryRun.result.counts).toEqual(fromTheStart);
    expect(await checkpointOffset()).toBe(950);
    expect(await snapshotTables(db)).toEqual(before);

    requestsBefore = api.requests.length;
    const restarted = await backfill(api, { restart: true });

    expect(offsetOf(listRequests(api, requestsBefore)[0])).toBe(0);
    expect(restarted.result.resumedFrom).toBe(0);
    expect(restarted.result.counts).toEqual(fromTheStart);
    await expectExactRows(api.users);
    expect(await checkpointOffset()).toBeUndefined();
  });

  it('waits as long as each Retry-After says, however many 429s come in a row', async () => {
    const faults: InjectedFault[] = Array.from({ length: 3 }, (_, index) => ({
      onListRequest: index + 1,
      status: 429,
      retryAfterSeconds: index + 1,
    }));
    const api = await startFake(faults, generateUsers(600));

    const { waits } = await backfill(api);

    expect(waits).toEqual([1_000, 2_000, 3_000]);
    expect(await countRows(db, 'users')).toBe(600);
  });
});

describe('npm run backfill', () => {
  const cliEnv = (api: FakeClerkApi) => ({ ...fakeClerkEnv(api), DATABASE_URL: db.url });

  it('imports every user, prints plain progress lines and a summary', async () => {
    const api = await startFake([{ onListRequest: 2, status: 429, retryAfterSeconds: 0 }]);

    const { code, stdout, stderr } = await runNpmScript('backfill', [], cliEnv(api));

    expect(code).toBe(0);
    expect(stdout).toMatch(/^backfill finished: 2345 users in [\d.]+ s \(\d+ users\/s\)\n/);
    expect(stdout).toContain(`created    ${STORABLE}`);
    expect(stdout).toContain('no email address: 2');
    const lines = stderr.trim().split('\n');
    expect(lines[0]).toBe('backfill: 2345 users in Clerk');
    expect(lines).toContain(
      'backfill: GET /v1/users offset 450: rate limited (429); retrying in 0 ms',
    );
    expect(lines.at(-1)).toMatch(/^backfill: 2345\/2345 users \(100%\), \d+ users\/s, eta 0s$/);
    expect(stderr).not.toContain('\u001b[');
    await expectExactRows(api.users);
  });

  it('fails in one line, without a stack trace, when the key is missing or refused', async () => {
    const api = await startFake([], generateUsers(10));

    const [missing, refused] = await Promise.all([
      runNpmScript('backfill', [], { ...cliEnv(api), CLERK_SECRET_KEY: undefined }),
      runNpmScript('backfill', [], { ...cliEnv(api), CLERK_SECRET_KEY: 'sk_test_wrong' }),
    ]);

    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^clerk-sync: CLERK_SECRET_KEY is required/),
    ]);
    expect(refused).toMatchObject({
      code: 1,
      stdout: '',
      stderr:
        'clerk-sync: GET /v1/users offset 0 failed with status 401 (check CLERK_SECRET_KEY)\n',
    });
    expect(await countRows(db, 'users')).toBe(0);
  });

  it('prints an unexpected failure with its stack, scrubbed of email addresses', async () => {
    const api = await startFake([], generateUsers(10));
    // A database error that quotes the row it refused, as a constraint or trigger can.
    await sql(
      db,
      `create function refuse_user() returns trigger language plpgsql as $$
       begin raise exception 'refused %', new.email; end $$;
       create trigger refuse_user before insert on users for each row execute function refuse_user()`,
    );
    try {
      const { code, stderr } = await runNpmScript('backfill', [], cliEnv(api));

      expect(code).toBe(1);
      expect(stderr).toContain('refused [email]');
      expect(stderr).toMatch(/\n +at /);
      expect(stderr).not.toMatch(/person\d+@example\.com/);
    } finally {
      await sql(db, 'drop function refuse_user() cascade');
    }
  });

  it.skipIf(!existsSync('/usr/bin/script'))(
    'draws a progress bar on a terminal, and again after a retry message',
    async () => {
      const api = await startFake([{ onListRequest: 3, status: 429, retryAfterSeconds: 0 }]);

      const { code, stdout } = await runCommand(
        'script',
        ['-qec', 'npm run -s backfill', '/dev/null'],
        cliEnv(api),
      );

      expect(code).toBe(0);
      const screen = stripVTControlCharacters(stdout);
      const [beforeRetry, afterRetry] = screen.split('rate limited (429); retrying in 0 ms');
      expect(beforeRetry).toMatch(/backfill \[.*\] \d+\/2345 users \| \d+ users\/s \| ETA /);
      expect(afterRetry).toMatch(/backfill \[.*\] 2345\/2345 users \| \d+ users\/s \| ETA /);
      expect(afterRetry).toContain('backfill finished: 2345 users');
      expect(await countRows(db, 'users')).toBe(STORABLE);
    },
  );
});
