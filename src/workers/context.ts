import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from '../logger.ts';
import type { ChangeOutcome } from '../users/apply-user-changes.ts';

/** What every event handler gets: an entity manager forked for its job, and the job's logger. */
export interface HandlerContext {
  em: EntityManager;
  log: Logger;
}

/** What a handler did, for the logs and the job's return value. */
export type HandlerOutcome = ChangeOutcome;
