import { Routine } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sql } from 'kysely';
import { ConfigError, READ_ONLY_DATABASE } from '../errors.ts';

const LOCKED_ROW =
  'clerk_user_id text, user_id uuid, email text, timezone text, clerk_updated_ms double precision, has_preferences boolean, deleted boolean';

/**
 * The function behind lockAndRead, declared to MikroORM so that its schema diff knows it (a
 * migration creates it). It is a function because a plain statement reads with the snapshot it
 * took when it started, before it waited on the locks, and so would miss what the transaction
 * holding them committed; each query in a volatile function takes a snapshot of its own. It
 * also sets the transaction's own timeouts: set_config(..., true) lasts until the transaction
 * ends, which a transaction pooler allows, where a session-level SET is not. With a null
 * timeout nothing is locked: a plain read.
 */
export const lockAndReadClerkUsers = new Routine({
  name: 'lock_and_read_clerk_users',
  type: 'function',
  params: {
    clerk_user_ids: { type: 'text[]' },
    timeout_ms: { type: 'integer' },
  },
  returns: { runtimeType: 'object', columnType: `table (${LOCKED_ROW})` },
  expression: `create or replace function "lock_and_read_clerk_users"(clerk_user_ids text[], timeout_ms integer)
  returns table (${LOCKED_ROW})
  language plpgsql volatile
as $$
#variable_conflict use_column
begin
  if timeout_ms is not null then
    perform set_config('statement_timeout', timeout_ms::text, true),
            set_config('idle_in_transaction_session_timeout', timeout_ms::text, true);
    perform pg_advisory_xact_lock(keys.lock_key)
       from (select distinct hashtextextended(ids.id, 0) as lock_key
               from unnest(clerk_user_ids) as ids(id) order by lock_key) as keys;
  end if;
  return query
    select ids.id, u.id, u.email::text, u.timezone::text,
           (extract(epoch from u.clerk_updated_at) * 1000)::float8,
           p.id is not null, d.clerk_user_id is not null
      from unnest(clerk_user_ids) as ids(id)
      left join users u on u.clerk_user_id = ids.id
      left join user_preferences p on p.user_id = u.id
      left join deleted_clerk_users d on d.clerk_user_id = ids.id;
end
$$`,
});

interface LockedRow {
  clerk_user_id: string;
  user_id: string | null;
  email: string | null;
  timezone: string | null;
  /** Milliseconds since the epoch, as Clerk gives them. */
  clerk_updated_ms: number | null;
  has_preferences: boolean;
  deleted: boolean;
}

/** What the rules need to know of a stored user. */
export interface StoredUser {
  email: string;
  timezone: string | null | undefined;
  clerkUpdatedAt: Date | null | undefined;
}

/** What is stored of one Clerk id. */
export interface LockedUser {
  clerkUserId: string;
  /** The stored user's key and what the rules read of it, if there is a stored user. */
  storedId: string | undefined;
  stored: StoredUser | undefined;
  hasPreferences: boolean;
  /** Deleted earlier (by a user.deleted or reconcile). */
  tombstoned: boolean;
}

/**
 * Takes the transaction-scoped advisory locks on these Clerk ids, in one fixed order, and reads
 * what is stored of each, in one round trip. A user.deleted and a late user.created for the
 * same user, or fifty copies of one event, then never interleave between "read what is stored"
 * and "write". A null timeout locks nothing: a plain read.
 */
export async function lockAndRead(
  em: EntityManager,
  clerkUserIds: readonly string[],
  timeoutMs: number | null,
): Promise<LockedUser[]> {
  if (clerkUserIds.length === 0) return [];
  const { rows } = await callLockAndRead(em, clerkUserIds, timeoutMs);
  return rows.map((row) => ({
    clerkUserId: row.clerk_user_id,
    storedId: row.user_id ?? undefined,
    stored: row.user_id
      ? {
          email: row.email as string,
          timezone: row.timezone,
          clerkUpdatedAt: row.clerk_updated_ms === null ? null : new Date(row.clerk_updated_ms),
        }
      : undefined,
    hasPreferences: row.has_preferences,
    tombstoned: row.deleted,
  }));
}

/**
 * Fails with PostgreSQL's own error when the migrations have not run (no function, or no
 * tables for it to read), and, for a command that will write, with a ConfigError when the
 * database takes no writes (a standby, a read replica): a command checks this before it spends
 * minutes reading Clerk.
 */
export async function expectDatabaseReady(
  em: EntityManager,
  options: { writes: boolean },
): Promise<void> {
  await callLockAndRead(em, [], null);
  if (!options.writes) return;
  const [setting] = await em
    .getConnection()
    .execute<{ transaction_read_only: string }[]>('show transaction_read_only');
  if (setting?.transaction_read_only === 'on') {
    throw new ConfigError(READ_ONLY_DATABASE);
  }
}

/** Through MikroORM's Kysely, so that the ids go as one parameter instead of quoted into the text. */
function callLockAndRead(em: EntityManager, ids: readonly string[], timeoutMs: number | null) {
  const query = sql<LockedRow>`select * from ${sql.id(lockAndReadClerkUsers.name)}(${ids}::text[], ${timeoutMs})`;
  return query.execute(em.getKysely());
}
