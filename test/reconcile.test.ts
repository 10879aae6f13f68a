import { beforeEach, describe, expect, it } from 'vitest';
import { ClerkApiError } from '../src/errors.ts';
import { runBackfill } from '../src/sync/backfill.ts';
import {
  formatReconcileReport,
  GONE_CHECK_CONCURRENCY,
  type ReconcileReport,
  reconcile,
} from '../src/sync/reconcile.ts';
import { applyUserChanges } from '../src/users/apply-user-changes.ts';
import { upsertOf } from '../src/users/user-change.ts';
import { runNpmScript } from './support/cli.ts';
import { fakeClerkClient } from './support/config.ts';
import { countRows, sql } from './support/database.ts';
import {
  type FakeClerkApi,
  type FakeUser,
  fakeClerkEnv,
  generateUsers,
  startFakeClerkApi,
  userJson,
} from './support/fake-clerk-api.ts';
import { cleanUpAfterEach, useTestDatabase } from './support/hooks.ts';
import { expectUserRows, snapshotTables, tombstoneIds } from './support/stored-users.ts';

const USER_COUNT = 1_234;
/** Listed by Clerk, not stored here. */
const MISSING = [5, 6, 600, 601, 1_100, 1_101];
/** Stored here; Clerk's list does not have them and GET /v1/users/:id answers 404. */
const GONE = ['user_zz_gone_1', 'user_zz_gone_2'];
const EMAIL_DRIFT = [10, 11];
const TIMEZONE_DRIFT = [12, 13];
const BOTH_DRIFT = 14;
/** Deleted here by a user.deleted; Clerk still lists it. */
const TOMBSTONED = 20;
/** In Clerk without an email address: never stored. */
const WITHOUT_EMAIL = 50;
/** In Clerk with a record the schema rejects (a negative updated_at): never stored. */
const MALFORMED = 60;

const EMAIL_PATTERN = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/;

const db = useTestDatabase({ emptyEachTest: true });
const cleanUpLater = cleanUpAfterEach();
let fake: FakeClerkApi | undefined;
let users: FakeUser[];

beforeEach(async () => {
  users = generateUsers(USER_COUNT);
  userAt(WITHOUT_EMAIL).email = null;
  userAt(MALFORMED).updatedAt = -1;
  const started = await startFakeClerkApi(users);
  fake = started;
  cleanUpLater(() => started.close());
});

function userAt(index: number): FakeUser {
  const found = users[index];
  if (!found) throw new Error(`no user at ${index}`);
  return found;
}

const idOf = (index: number) => userAt(index).id;

function api(): FakeClerkApi {
  if (!fake) throw new Error('fake Clerk API not started');
  return fake;
}

const client = (env: Record<string, string> = {}) => fakeClerkClient(api(), env);

/** Stores users here, as webhooks would have, whom Clerk neither lists nor finds. */
async function storeUsersClerkDoesNotHave(ids: string[]): Promise<void> {
  await applyUserChanges(
    db.em.fork(),
    ids.map((id, index) =>
      upsertOf(userJson({ id, email: `gone${index}@example.com`, createdAt: 1, updatedAt: 2 })),
    ),
  );
}

/**
 * Everything in step first (a backfill), then drift of every kind: rows removed behind the
 * service's back, users Clerk no longer has, local edits of email and timezone, and a user
 * deleted by a webhook whom Clerk still lists.
 */
async function setUpDrift(): Promise<void> {
  await runBackfill({ em: db.em, client: client() });
  await sql(db, 'delete from users where clerk_user_id in (?)', [MISSING.map(idOf)]);
  await storeUsersClerkDoesNotHave(GONE);
  for (const index of [...EMAIL_DRIFT, BOTH_DRIFT]) {
    await sql(db, 'update users set email = ? where clerk_user_id = ?', [
      `local.edit.${index}@example.com`,
      idOf(index),
    ]);
  }
  for (const index of [...TIMEZONE_DRIFT, BOTH_DRIFT]) {
    await sql(db, `update users set timezone = 'Asia/Tokyo' where clerk_user_id = ?`, [
      idOf(index),
    ]);
  }
  await applyUserChanges(db.em.fork(), [{ kind: 'delete', clerkUserId: idOf(TOMBSTONED) }]);
}

const snapshot = () => snapshotTables(db);

/** Clerk's timezone for a generated user. */
const clerkTimezone = (index: number) => (index % 3 === 0 ? 'Europe/Paris' : 'UTC');

function expectedReport(): ReconcileReport {
  const stored = USER_COUNT - 2 - MISSING.length + GONE.length - 1;
  const drift = (index: number, fields: ('email' | 'timezone')[]) => ({
    clerkUserId: idOf(index),
    fields,
    local: {
      email: fields.includes('email')
        ? `local.edit.${index}@example.com`
        : `person${index}@example.com`,
      timezone: fields.includes('timezone') ? 'Asia/Tokyo' : clerkTimezone(index),
    },
    clerk: { email: `person${index}@example.com`, timezone: clerkTimezone(index) },
  });
  return {
    clerkUsers: USER_COUNT,
    localUsers: stored,
    missing: MISSING.map(idOf),
    gone: GONE,
    drifted: [
      ...EMAIL_DRIFT.map((index) => drift(index, ['email'])),
      ...TIMEZONE_DRIFT.map((index) => drift(index, ['timezone'])),
      drift(BOTH_DRIFT, ['email', 'timezone']),
    ],
    deletedHere: [idOf(TOMBSTONED)],
    unusable: [idOf(WITHOUT_EMAIL), idOf(MALFORMED)],
  };
}

/** Rows as Clerk says they should be: every storable Clerk user except the one deleted here. */
async function expectInStepWithClerk(): Promise<void> {
  const expected = users.flatMap((user, index) =>
    user.email && index !== TOMBSTONED && index !== MALFORMED
      ? [
          {
            clerk_user_id: user.id,
            email: user.email,
            timezone: clerkTimezone(index),
            clerk_updated_at: user.updatedAt,
          },
        ]
      : [],
  );
  await expectUserRows(db, expected);
}

describe('reconcile', () => {
  it('reports every kind of difference and changes nothing', async () => {
    await setUpDrift();
    const before = await snapshot();
    const listed = api().requests.filter((request) => request.startsWith('GET /v1/users?')).length;
    api().faults.push({ onListRequest: listed + 2, status: 429, retryAfterSeconds: 3 });
    const retries: [string, number][] = [];

    const report = await reconcile({
      em: db.em,
      client: client(),
      api: {
        onRetry: (reason, waitMs) => retries.push([reason, waitMs]),
        wait: async () => {},
      },
    });

    expect(report).toEqual(expectedReport());
    expect(retries).toEqual([['GET /v1/users offset 450: rate limited (429)', 3_000]]);
    expect(api().requests).toEqual(expect.arrayContaining(GONE.map((id) => `GET /v1/users/${id}`)));
    expect(await snapshot()).toEqual(before);
  });

  it('formats counts and the first few ids, and emails only on request', async () => {
    await setUpDrift();
    const report = await reconcile({ em: db.em, client: client() });

    const text = formatReconcileReport(report);

    const ids = (indexes: number[]) => indexes.map(idOf).join(', ');
    expect(text.split('\n')).toEqual([
      `reconcile: ${USER_COUNT} users in Clerk, ${expectedReport().localUsers} here`,
      `  missing here         6: ${ids(MISSING.slice(0, 5))}, …`,
      `  gone from Clerk      2: ${GONE.join(', ')}`,
      `  email drift          3: ${ids([...EMAIL_DRIFT, BOTH_DRIFT])}`,
      `  timezone drift       3: ${ids([...TIMEZONE_DRIFT, BOTH_DRIFT])}`,
      `  deleted here, still in Clerk (left deleted) 1: ${idOf(TOMBSTONED)}`,
      `  cannot be stored (no email address, or malformed) 2: ${ids([WITHOUT_EMAIL, MALFORMED])}`,
      'nothing changed (run with --apply to fix)',
    ]);
    expect(text).not.toMatch(EMAIL_PATTERN);

    const withEmails = formatReconcileReport(report, { showEmails: true });
    expect(withEmails).toContain(
      `${idOf(10)}: here local.edit.10@example.com UTC; Clerk person10@example.com UTC`,
    );
    expect(withEmails).toContain(
      `${idOf(BOTH_DRIFT)}: here local.edit.14@example.com Asia/Tokyo; Clerk person14@example.com UTC`,
    );
  });

  it('with apply, creates the missing, deletes the gone, fixes the drifted, and leaves the deleted deleted', async () => {
    await setUpDrift();

    const report = await reconcile({ em: db.em, client: client(), apply: true });

    expect(report).toEqual({
      ...expectedReport(),
      applied: { created: MISSING.length, updated: 5, deleted: GONE.length },
    });
    await expectInStepWithClerk();
    expect(await tombstoneIds(db)).toEqual([idOf(TOMBSTONED), ...GONE].sort());
    expect(formatReconcileReport(report)).toContain('applied: created 6, updated 5, deleted 2');

    const again = await reconcile({ em: db.em, client: client(), apply: true });

    expect(again).toMatchObject({
      missing: [],
      gone: [],
      drifted: [],
      deletedHere: [idOf(TOMBSTONED)],
      unusable: [idOf(WITHOUT_EMAIL), idOf(MALFORMED)],
      applied: {},
    });
    expect(formatReconcileReport(again)).toContain('applied: nothing to change');
    await expectInStepWithClerk();
  });

  it('asks Clerk about the users it no longer lists several at a time', async () => {
    await runBackfill({ em: db.em, client: client() });
    const gone = Array.from({ length: 30 }, (_, index) => `user_zz_gone_${index}`);
    await storeUsersClerkDoesNotHave(gone);
    api().userLookupDelayMs = 20;

    const report = await reconcile({ em: db.em, client: client() });

    expect(report.gone).toEqual([...gone].sort());
    expect(api().peakConcurrentLookups).toBe(GONE_CHECK_CONCURRENCY);
  });

  it('finds nothing to do when the table is in step', async () => {
    await runBackfill({ em: db.em, client: client() });
    const before = await snapshot();

    const report = await reconcile({ em: db.em, client: client(), apply: true });

    expect(report).toMatchObject({
      clerkUsers: USER_COUNT,
      localUsers: USER_COUNT - 2,
      missing: [],
      gone: [],
      drifted: [],
      deletedHere: [],
      applied: {},
    });
    expect(await snapshot()).toEqual(before);
  });
});

describe('reconcile --apply against the wrong Clerk instance', () => {
  const STORED = USER_COUNT - 2;

  it('refuses, changing nothing, when it would delete more than 5% of the users stored here; a higher limit lets it', async () => {
    await runBackfill({ em: db.em, client: client() });
    // Clerk no longer has the oldest 102 users, 100 of whom are stored here (8.1%).
    const forgotten = users
      .slice(0, 102)
      .filter((_, index) => index !== WITHOUT_EMAIL && index !== MALFORMED);
    api().users = users.slice(102);
    const before = await snapshot();

    const refused = await reconcile({ em: db.em, client: client(), apply: true });

    expect(refused.gone).toEqual(forgotten.map((user) => user.id).sort());
    expect(refused.applied).toBeUndefined();
    expect(refused.refused).toBe(
      `--apply would delete 100 of the ${STORED} users stored here (8.1%), more than --max-delete-percent 5 allows; check that CLERK_SECRET_KEY and CLERK_API_URL name the right Clerk instance, or run again with --max-delete-percent 9 to delete them`,
    );
    expect(formatReconcileReport(refused)).toContain(
      `refused, nothing changed: ${refused.refused}`,
    );
    expect(await snapshot()).toEqual(before);

    const allowed = await reconcile({
      em: db.em,
      client: client(),
      apply: true,
      maxDeletePercent: 9,
    });

    expect(allowed.refused).toBeUndefined();
    expect(allowed.applied).toMatchObject({ deleted: 100 });
    expect(await countRows(db, 'users')).toBe(STORED - 100);
  });

  it('refuses, changing nothing, when Clerk lists no users while some are stored here', async () => {
    await runBackfill({ em: db.em, client: client() });
    api().users = [];
    const before = await snapshot();

    const report = await reconcile({ em: db.em, client: client(), apply: true });

    expect(report).toMatchObject({ clerkUsers: 0, localUsers: STORED });
    expect(report.refused).toMatch(
      new RegExp(
        `^Clerk lists no users while ${STORED} are stored here; .* --max-delete-percent 100`,
      ),
    );
    expect(await snapshot()).toEqual(before);
  });

  it('gives up on a Clerk API that never answers, after its retries, each request timed out', async () => {
    api().hang = true;

    const attempt = reconcile({
      em: db.em,
      client: client({ CLERK_API_TIMEOUT_MS: '200' }),
      api: { wait: async () => {} },
    });

    await expect(attempt).rejects.toBeInstanceOf(ClerkApiError);
    await expect(attempt).rejects.toThrow(/no answer: .* CLERK_API_TIMEOUT_MS/);
    expect(api().requests.filter((request) => request.startsWith('GET /v1/users?'))).toHaveLength(
      8,
    );
  });
});

describe('npm run reconcile', () => {
  const cliEnv = () => ({ ...fakeClerkEnv(api()), DATABASE_URL: db.url });

  it('reports without emails and changes nothing; with --apply, fixes everything', async () => {
    await setUpDrift();
    const before = await snapshot();

    const [dry, shown] = await Promise.all([
      runNpmScript('reconcile', [], cliEnv()),
      runNpmScript('reconcile', ['--show-emails'], cliEnv()),
    ]);

    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(
      `  missing here         6: ${MISSING.slice(0, 5).map(idOf).join(', ')}, …`,
    );
    expect(dry.stdout).toContain(`  gone from Clerk      2: ${GONE.join(', ')}\n`);
    expect(dry.stdout).toContain('  email drift          3: ');
    expect(dry.stdout).toContain('nothing changed (run with --apply to fix)');
    expect(dry.stdout).not.toMatch(EMAIL_PATTERN);
    expect(dry.stderr).toContain(`reconcile: reading Clerk: ${USER_COUNT} users in Clerk`);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(
      'here local.edit.10@example.com UTC; Clerk person10@example.com',
    );
    expect(await snapshot()).toEqual(before);

    const applied = await runNpmScript('reconcile', ['--apply'], cliEnv());

    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain('applied: created 6, updated 5, deleted 2');
    expect(applied.stdout).not.toMatch(EMAIL_PATTERN);
    await expectInStepWithClerk();
    expect(await countRows(db, 'deleted_clerk_users')).toBe(1 + GONE.length);
    expect(await reconcile({ em: db.em, client: client() })).toMatchObject({
      missing: [],
      gone: [],
      drifted: [],
    });
  });

  it('with --apply, refuses against an instance that lists nobody, exits 1 and changes nothing', async () => {
    await runBackfill({ em: db.em, client: client() });
    api().users = [];
    const before = await snapshot();

    const [refused, badOption] = await Promise.all([
      runNpmScript('reconcile', ['--apply'], cliEnv()),
      runNpmScript('reconcile', ['--apply', '--max-delete-percent', 'all'], cliEnv()),
    ]);

    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain(
      `refused, nothing changed: Clerk lists no users while ${USER_COUNT - 2} are stored here`,
    );
    expect(refused.stdout).toContain('--max-delete-percent 100');
    expect(badOption.code).toBe(1);
    expect(badOption.stderr).toContain('--max-delete-percent must be a number from 0 to 100');
    expect(await snapshot()).toEqual(before);
  });
});
