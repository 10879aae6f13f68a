import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from '../logger.ts';
import {
  applyUserChanges,
  type ChangeOutcome,
  type UserChange,
} from '../users/apply-user-changes.ts';

/** What a handler did, for the logs and the job's return value. */
export type HandlerOutcome = ChangeOutcome;

/**
 * What every event handler gets: an entity manager forked for its job, the job's logger, and
 * how its change is committed: on its own, or together with other jobs' (group commit).
 */
export interface HandlerContext {
  em: EntityManager;
  log: Logger;
  commit: (change: UserChange) => Promise<HandlerOutcome>;
}

/** A context whose changes commit on their own, in the job's own transaction. */
export function handlerContext(em: EntityManager, log: Logger): HandlerContext {
  return {
    em,
    log,
    commit: async (change) => (await applyUserChanges(em, [change]))[0] as HandlerOutcome,
  };
}
