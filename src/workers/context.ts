import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from '../logger.ts';

/** What every event handler gets: an entity manager forked for its job, and the job's logger. */
export interface HandlerContext {
  em: EntityManager;
  log: Logger;
}

/** What a handler did, for the logs and the job's return value. */
export type HandlerOutcome =
  | 'created'
  | 'updated'
  | 'deleted'
  | 'unchanged'
  | 'stale'
  | 'tombstoned'
  | 'absent';

/**
 * Serializes all work on one Clerk user across workers until the transaction ends, so a
 * user.deleted and a late user.created for the same user, or fifty copies of one event, never
 * interleave between "read what is stored" and "write".
 */
export async function lockClerkUser(em: EntityManager, clerkUserId: string): Promise<void> {
  await em.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [clerkUserId]);
}
