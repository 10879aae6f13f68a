import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from '../logger.ts';
import {
  applyUserChanges,
  type ChangeOutcome,
  type UserChange,
} from '../users/apply-user-changes.ts';

export interface GroupCommitOptions {
  em: EntityManager;
  log: Logger;
  /** A batch is committed once it holds this many changes... */
  maxBatch: number;
  /** ...or this long after its first change arrived, whichever comes first. */
  windowMs: number;
  /** Told the size of every batch committed, for metrics. */
  onBatch?: (size: number) => void;
}

interface Pending {
  change: UserChange;
  resolve: (outcome: ChangeOutcome) => void;
  reject: (error: unknown) => void;
}

/**
 * Commits the changes of many concurrent jobs together: one unit of work, one transaction, one
 * round of locks and inserts for a whole batch, instead of one each. Every job still gets its
 * own outcome. When a batch fails, its changes are applied again one at a time, so one bad
 * event fails only its own job and never its neighbours.
 */
export class GroupCommit {
  readonly #options: GroupCommitOptions;
  #pending: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(options: GroupCommitOptions) {
    this.#options = options;
  }

  apply(change: UserChange): Promise<ChangeOutcome> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ change, resolve, reject });
      if (this.#pending.length >= this.#options.maxBatch) this.#commit();
      else this.#timer ??= setTimeout(() => this.#commit(), this.#options.windowMs);
    });
  }

  #commit(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length > 0) void this.#commitBatch(batch);
  }

  async #commitBatch(batch: Pending[]): Promise<void> {
    try {
      const outcomes = await applyUserChanges(
        this.#options.em.fork(),
        batch.map((item) => item.change),
      );
      this.#options.onBatch?.(batch.length);
      for (const [index, item] of batch.entries()) item.resolve(outcomes[index] as ChangeOutcome);
    } catch (error) {
      if (batch.length === 1) {
        batch[0]?.reject(error);
        return;
      }
      this.#options.log.warn(
        { err: error, batchSize: batch.length },
        'batch failed; applying its changes one by one',
      );
      for (const item of batch) {
        await applyUserChanges(this.#options.em.fork(), [item.change]).then(
          ([outcome]) => item.resolve(outcome as ChangeOutcome),
          item.reject,
        );
      }
    }
  }
}
