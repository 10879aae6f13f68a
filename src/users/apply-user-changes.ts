import type { EntityManager } from '@mikro-orm/postgresql';
import { DeletedClerkUser, defaultPreferences, User, UserPreferences } from '../entities/index.ts';
import { chooseEmail, chooseTimezone } from './clerk-user.ts';
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

/** What the rules need to know of a stored user. */
export interface StoredUser {
  email: string;
  timezone: string | null | undefined;
  clerkUpdatedAt: Date | null | undefined;
}

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

/**
 * Applies changes to many users in one unit of work and one transaction, with the same rules
 * for a single webhook, a batch of webhooks or a page of the Backend API. Every user touched is
 * locked first (in a fixed order, so concurrent batches cannot deadlock), which serializes
 * work on one user across all workers and commands. With `dryRun`, nothing is locked or
 * written and the outcomes say what would happen. Outcomes come back in input order.
 *
 * PostgreSQL itself ends the transaction, and frees its locks, when a statement runs longer
 * than `timeoutMs` or the client stays silent that long in the middle of it (a worker that
 * died or lost its network): nobody waits on the locks of a transaction that will never end.
 */
export async function applyUserChanges(
  em: EntityManager,
  changes: readonly UserChange[],
  options: { dryRun?: boolean; timeoutMs?: number } = {},
): Promise<ChangeOutcome[]> {
  const ids = [...new Set(changes.map(clerkUserIdOf))];
  const run = async (tx: EntityManager) => {
    if (!options.dryRun) await lockClerkUsers(tx, ids, options.timeoutMs ?? TRANSACTION_TIMEOUT_MS);
    const users = new Map(
      (await tx.find(User, { clerkUserId: { $in: ids } }, { populate: ['preferences'] })).map(
        (user) => [user.clerkUserId, user],
      ),
    );
    // A stored user has no tombstone (both change only together, under the lock), so only
    // the ids with no row need looking up.
    const tombstoned = await findTombstones(
      tx,
      ids.filter((id) => !users.has(id)),
    );
    const write = !options.dryRun;

    return changes.map((change): ChangeOutcome => {
      const clerkUserId = clerkUserIdOf(change);
      if (change.kind === 'delete') {
        if (!tombstoned.has(clerkUserId) && write) tx.create(DeletedClerkUser, { clerkUserId });
        tombstoned.add(clerkUserId);
        const user = users.get(clerkUserId);
        users.delete(clerkUserId);
        if (!user) return 'absent';
        // A user created earlier in this same batch has no row yet for the cascade to follow.
        if (write) tx.remove([user, ...(user.preferences ? [user.preferences] : [])]);
        return 'deleted';
      }

      const email = chooseEmail(change.user);
      if (!email) return 'no_email';
      if (tombstoned.has(clerkUserId)) return 'deleted_earlier';
      const incoming = {
        email,
        timezone: chooseTimezone(change.user),
        clerkUpdatedAt: change.user.updated_at ? new Date(change.user.updated_at) : null,
      };
      const user = users.get(clerkUserId);
      const outcome = decideUpsert(user, incoming);
      if (outcome === 'created') {
        const created = tx.create(User, { clerkUserId, ...incoming });
        if (write)
          tx.create(UserPreferences, { user: created, ...defaultPreferences(incoming.timezone) });
        users.set(clerkUserId, created);
      } else if (user && outcome !== 'stale') {
        // A dry run changes its entities too (its fork is never flushed), so that later changes
        // to the same user in this batch are judged against this one, as they are for real.
        if (outcome === 'updated')
          tx.assign(user, { email: incoming.email, timezone: incoming.timezone });
        if (incoming.clerkUpdatedAt && incoming.clerkUpdatedAt > (user.clerkUpdatedAt ?? 0)) {
          user.clerkUpdatedAt = incoming.clerkUpdatedAt;
        }
        if (!user.preferences && write)
          tx.create(UserPreferences, { user, ...defaultPreferences(incoming.timezone) });
      }
      return outcome;
    });
  };
  if (options.dryRun) return run(em.fork());
  return em.isInTransaction() ? run(em) : em.transactional(run);
}

/**
 * Which of these Clerk ids were deleted (by a user.deleted or reconcile). A plain query: it runs for every batch, and MikroORM's
 * find, which also builds and registers entities, costs several times as much CPU.
 */
export async function findTombstones(
  em: EntityManager,
  clerkUserIds: string[],
): Promise<Set<string>> {
  if (clerkUserIds.length === 0) return new Set();
  const rows = await em.execute<{ clerk_user_id: string }[]>(
    'select clerk_user_id from deleted_clerk_users where clerk_user_id in (?)',
    [clerkUserIds],
  );
  return new Set(rows.map((row) => row.clerk_user_id));
}

/** A transaction of a few hundred users commits in well under a second. */
export const TRANSACTION_TIMEOUT_MS = 15_000;

/**
 * Transaction-scoped advisory locks on Clerk user ids, taken in one statement in a fixed
 * order. A user.deleted and a late user.created for the same user, or fifty copies of one
 * event, then never interleave between "read what is stored" and "write". The same statement
 * sets the transaction's own timeouts (set_config(..., true) lasts until the transaction ends,
 * which a transaction pooler allows, where a session-level SET is not).
 */
async function lockClerkUsers(
  em: EntityManager,
  clerkUserIds: readonly string[],
  timeoutMs: number,
): Promise<void> {
  if (clerkUserIds.length === 0) return;
  const timeout = String(timeoutMs);
  await em.execute(
    `select pg_advisory_xact_lock(lock_key)
       from (select distinct hashtextextended(id, 0) as lock_key from unnest(array[?]::text[]) as ids(id) order by lock_key) as keys
      where set_config('statement_timeout', ?, true) is not null
        and set_config('idle_in_transaction_session_timeout', ?, true) is not null`,
    [clerkUserIds, timeout, timeout],
  );
}
