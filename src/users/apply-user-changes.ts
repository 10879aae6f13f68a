import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { type RawBuilder, sql } from 'kysely';
import { DeletedClerkUser, defaultPreferences, User, UserPreferences } from '../entities/index.ts';
import { chooseEmail, chooseTimezone } from './clerk-user.ts';
import { type LockedUser, lockAndRead, type StoredUser } from './lock-and-read.ts';
import { clerkUserIdOf, type UserChange } from './user-change.ts';

export type { UserChange } from './user-change.ts';

export type ChangeOutcome =
  /** new user, with default preferences */
  | 'created'
  /** email or timezone changed */
  | 'updated'
  /** nothing to change: the same data, or only a newer Clerk timestamp */
  | 'unchanged'
  /** older than what is stored */
  | 'stale'
  /** the user was deleted earlier; Clerk never reuses ids */
  | 'deleted_earlier'
  /** a user with no email address cannot be stored */
  | 'no_email'
  | 'deleted'
  /** a deletion of a user that was never stored */
  | 'absent';

/**
 * The order-safety rule, on its own: an event older than what is stored never overwrites it;
 * one with the same timestamp and different data is Clerk's word against a local edit, and
 * Clerk wins.
 */
export function decideUpsert(
  stored: StoredUser | undefined,
  incoming: { email: string; timezone: string; clerkUpdatedAt: Date | null },
): 'created' | 'updated' | 'unchanged' | 'stale' {
  if (!stored) return 'created';
  const storedAt = stored.clerkUpdatedAt?.getTime();
  const incomingAt = incoming.clerkUpdatedAt?.getTime();
  if (storedAt !== undefined && (incomingAt === undefined || incomingAt < storedAt)) return 'stale';
  return stored.email === incoming.email && stored.timezone === incoming.timezone
    ? 'unchanged'
    : 'updated';
}

export interface ApplyOptions {
  /** Lock and write nothing; the outcomes say what would happen. */
  dryRun?: boolean;
  /** How long PostgreSQL lets one statement run, or the client stay silent, in the transaction. */
  timeoutMs?: number;
  /**
   * Write one statement per table and kind of change instead of going through the unit of work:
   * for batches and pages of hundreds of users, where building and tracking an entity per row
   * costs more than the rows themselves. The same rules decide, under the same locks. By
   * default a lone change goes through the unit of work and more than one in bulk.
   */
  bulk?: boolean;
  /** Called once every user touched is locked, before anything is written. */
  onLocked?: () => void;
}

/**
 * Applies changes to many users in one transaction, with the same rules for a single webhook,
 * a batch of webhooks or a page of the Backend API. Every user touched is locked first (in a
 * fixed order, so concurrent batches cannot deadlock) and read in the same round trip, which
 * serializes work on one user across all workers and commands. The rules then decide each
 * change in order, and what the batch changed in all is written. With `dryRun`, nothing is
 * locked or written and the outcomes say what would happen. Outcomes come back in input order.
 *
 * PostgreSQL itself ends the transaction, and frees its locks, when a statement runs longer
 * than `timeoutMs` or the client stays silent that long in the middle of it (a worker that
 * died or lost its network): nobody waits on the locks of a transaction that will never end.
 */
export async function applyUserChanges(
  em: EntityManager,
  changes: readonly UserChange[],
  options: ApplyOptions = {},
): Promise<ChangeOutcome[]> {
  const ids = [...new Set(changes.map(clerkUserIdOf))];
  if (options.dryRun) return decide(toStates(await lockAndRead(em, ids, null)), changes);
  const write = (options.bulk ?? changes.length > 1) ? writeInBulk : writeThroughUnitOfWork;
  const run = async (tx: EntityManager) => {
    const users = toStates(await lockAndRead(tx, ids, options.timeoutMs ?? TRANSACTION_TIMEOUT_MS));
    options.onLocked?.();
    const outcomes = decide(users, changes);
    await write(tx, users.values());
    return outcomes;
  };
  return em.isInTransaction() ? run(em) : em.transactional(run);
}

/** One Clerk id as read under its lock, and as the batch's changes leave it. */
interface UserState extends LockedUser {
  /** The user after the changes decided so far; undefined when there is none (or no longer). */
  current: StoredUser | undefined;
  /** The timezone of the default preferences to write, when the user needs them. */
  preferencesTimezone: string | undefined;
  tombstoneToWrite: boolean;
}

function toStates(locked: LockedUser[]): Map<string, UserState> {
  return new Map(
    locked.map((user) => [
      user.clerkUserId,
      {
        ...user,
        current: user.stored && { ...user.stored },
        preferencesTimezone: undefined,
        tombstoneToWrite: false,
      },
    ]),
  );
}

/**
 * The rules, change by change in input order, each judged against what the changes before it
 * in the batch left: the outcome of each. `users` is left as the batch leaves them.
 */
function decide(users: Map<string, UserState>, changes: readonly UserChange[]): ChangeOutcome[] {
  return changes.map((change): ChangeOutcome => {
    const state = users.get(clerkUserIdOf(change)) as UserState;
    if (change.kind === 'delete') {
      if (!state.tombstoned) state.tombstoneToWrite = true;
      state.tombstoned = true;
      if (!state.current) return 'absent';
      state.current = undefined;
      return 'deleted';
    }

    const email = chooseEmail(change.user);
    if (!email) return 'no_email';
    if (state.tombstoned) return 'deleted_earlier';
    const incoming = {
      email,
      timezone: chooseTimezone(change.user),
      clerkUpdatedAt: change.user.updated_at ? new Date(change.user.updated_at) : null,
    };
    const outcome = decideUpsert(state.current, incoming);
    if (outcome === 'stale') return outcome;
    if (!state.current) {
      state.current = { ...incoming };
    } else {
      if (outcome === 'updated')
        Object.assign(state.current, { email, timezone: incoming.timezone });
      const storedAt = state.current.clerkUpdatedAt?.getTime() ?? 0;
      if (incoming.clerkUpdatedAt && incoming.clerkUpdatedAt.getTime() > storedAt)
        state.current.clerkUpdatedAt = incoming.clerkUpdatedAt;
    }
    if (!state.hasPreferences) state.preferencesTimezone ??= incoming.timezone;
    return outcome;
  });
}

/** What one user's changes come to, written as the smallest set of rows. */
function changedFields(state: UserState): Partial<StoredUser> {
  const { stored, current } = state;
  if (!stored || !current) return {};
  const fields: Partial<StoredUser> = {};
  if (current.email !== stored.email) fields.email = current.email;
  if (current.timezone !== stored.timezone) fields.timezone = current.timezone;
  if (current.clerkUpdatedAt?.getTime() !== stored.clerkUpdatedAt?.getTime())
    fields.clerkUpdatedAt = current.clerkUpdatedAt;
  return fields;
}

/** Every row through MikroORM's unit of work, flushed on commit. */
async function writeThroughUnitOfWork(tx: EntityManager, users: Iterable<UserState>) {
  for (const state of users) {
    const { clerkUserId, storedId, current } = state;
    if (state.tombstoneToWrite) tx.create(DeletedClerkUser, { clerkUserId });
    if (storedId && !current) {
      // user_preferences follows by the foreign key's on delete cascade.
      tx.remove(tx.getReference(User, storedId));
      continue;
    }
    if (!current) continue;
    const user = storedId
      ? Object.assign(tx.getReference(User, storedId), changedFields(state))
      : tx.create(User, { clerkUserId, ...current });
    if (state.preferencesTimezone !== undefined)
      tx.create(UserPreferences, { user, ...defaultPreferences(state.preferencesTimezone) });
  }
}

/**
 * A page of users: new users and their preferences in one insert each, changed users in one
 * update, tombstones in one insert and deletions in one delete. New users get their key here,
 * so their preferences need no round trip for it.
 *
 * Each statement takes its rows as one JSON parameter, which PostgreSQL spreads into columns
 * (`jsonb_to_recordset`), through MikroORM's Kysely bound to the transaction. The unit of work
 * would build and track an entity per row, and `em.insertMany` quotes every value into the
 * statement's text: with it the backfill spent half again as much CPU per user.
 */
async function writeInBulk(tx: EntityManager, users: Iterable<UserState>) {
  const created: UserRow[] = [];
  const updated: UserRow[] = [];
  const preferences: PreferencesRow[] = [];
  const tombstones: string[] = [];
  const deleted: string[] = [];
  for (const state of users) {
    const { clerkUserId, storedId, current } = state;
    if (state.tombstoneToWrite) tombstones.push(clerkUserId);
    if (storedId && !current) deleted.push(storedId);
    if (!current) continue;
    const id = storedId ?? randomUUID();
    const { email, timezone, clerkUpdatedAt } = current;
    const row = {
      id,
      clerk_user_id: clerkUserId,
      email,
      timezone,
      clerk_updated_ms: clerkUpdatedAt?.getTime() ?? null,
    };
    if (!storedId) created.push(row);
    else if (Object.keys(changedFields(state)).length > 0) updated.push(row);
    if (state.preferencesTimezone !== undefined)
      preferences.push({ user_id: id, timezone: state.preferencesTimezone });
  }
  const run = (statement: RawBuilder<unknown>) => statement.execute(tx.getKysely());
  if (tombstones.length > 0)
    await run(sql`insert into deleted_clerk_users (clerk_user_id)
      select unnest(${tombstones}::text[])`);
  if (deleted.length > 0) await run(sql`delete from users where id = any(${deleted}::uuid[])`);
  if (created.length > 0)
    await run(sql`insert into users (id, clerk_user_id, email, timezone, clerk_updated_at)
      select id, clerk_user_id, email, timezone, ${CLERK_UPDATED_AT}
      from ${asTable(created, USER_ROW)}`);
  if (updated.length > 0)
    await run(sql`update users set email = row.email, timezone = row.timezone,
        clerk_updated_at = ${CLERK_UPDATED_AT}, updated_at = now()
      from ${asTable(updated, USER_ROW)} where users.id = row.id`);
  if (preferences.length > 0)
    await run(sql`insert into user_preferences (user_id, theme, custom_hours,
        communication_preferences, onboarding_completed)
      select row.user_id, defaults.theme, defaults.custom_hours,
        defaults.communication_preferences, defaults.onboarding_completed
      from ${asTable(preferences, PREFERENCES_ROW)}
      join ${asTable(defaultsByTimezone(preferences), DEFAULTS_ROW, 'defaults')} using (timezone)`);
}

interface UserRow {
  id: string;
  clerk_user_id: string;
  email: string;
  timezone: string | null | undefined;
  /** Milliseconds since the epoch: JSON.stringify of a Date costs five times the rest of the row. */
  clerk_updated_ms: number | null;
}

const USER_ROW = sql.raw(
  'id uuid, clerk_user_id text, email text, timezone text, clerk_updated_ms bigint',
);

const CLERK_UPDATED_AT = sql.raw(
  "timestamptz 'epoch' + row.clerk_updated_ms * interval '1 millisecond'",
);

/** A new user's preferences: its key and the timezone of its defaults. */
interface PreferencesRow {
  user_id: string;
  timezone: string;
}

const PREFERENCES_ROW = sql.raw('user_id uuid, timezone text');

/** The default preferences once for each timezone among the rows, not once for each row. */
function defaultsByTimezone(rows: PreferencesRow[]) {
  return [...new Set(rows.map((row) => row.timezone))].map((timezone) => {
    const defaults = defaultPreferences(timezone);
    return {
      timezone,
      theme: defaults.theme,
      custom_hours: defaults.customHours,
      communication_preferences: defaults.communicationPreferences,
      onboarding_completed: defaults.onboardingCompleted,
    };
  });
}

const DEFAULTS_ROW = sql.raw(
  'timezone text, theme text, custom_hours jsonb, communication_preferences jsonb, onboarding_completed boolean',
);

/** Rows, sent as one JSON parameter, as a table with these columns (named `row` unless told). */
const asTable = (rows: object[], columns: RawBuilder<unknown>, name = 'row') =>
  sql`jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as ${sql.raw(name)}(${columns})`;

/** A transaction of a few hundred users commits in well under a second. */
export const TRANSACTION_TIMEOUT_MS = 15_000;
