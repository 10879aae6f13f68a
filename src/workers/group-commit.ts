import type { EntityManager } from '@mikro-orm/postgresql';
import { TimeoutError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { withTimeout } from '../timeout.ts';
import {
  applyUserChanges,
  type ChangeOutcome,
  type UserChange,
} from '../users/apply-user-changes.ts';

export interface GroupCommitOptions {
  em: EntityManager;
  log: Logger;
  /** The most changes one transaction takes. */
  maxBatch: number;
  /** How long a batch waits for more changes before it starts; 0 waits for this turn of the event loop only. */
  windowMs: number;
  /**
   * How long a batch may take to commit before its jobs fail (to be retried) and the next batch
   * starts: a connection whose server vanished without a reset never answers, and waiting on it
   * would stall every job behind it.
   */
  commitTimeoutMs: number;
  /** Told the size of every batch committed, for metrics. */
  onBatch?: (size: number) => void;
}

interface Pending {
  change: UserChange;
  resolve: (outcome: ChangeOutcome) => void;
  reject: (error: unknown) => void;
}

/**
 * Commits the changes of many concurrent jobs together: one transaction, one
 * round of locks and inserts for a whole batch, instead of one each. Every job still gets its
 * own outcome. Batches size themselves: one commits at a time, and the changes that arrive
 * meanwhile make up the next, so a quiet worker commits each change at once and a busy one
 * commits hundreds together (each statement costs the worker far more CPU than one more row in
 * it). When a batch fails, its changes are applied again one at a time, so one bad event fails
 * only its own job and never its neighbours; a batch that does not commit in time fails whole.
 */
export class GroupCommit {
  readonly #options: GroupCommitOptions;
  #pending: Pending[] = [];
  #busy = false;

  constructor(options: GroupCommitOptions) {
    this.#options = options;
  }

  apply(change: UserChange): Promise<ChangeOutcome> {
    // Batches of one: every change commits on its own, as soon as it comes, side by side.
    if (this.#options.maxBatch === 1) {
      return this.#apply([change]).then(([outcome]) => {
        this.#options.onBatch?.(1);
        return outcome as ChangeOutcome;
      });
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ change, resolve, reject });
      this.#startSoon();
    });
  }

  /** Starts the next batch once this turn's changes have joined it, unless one is committing. */
  #startSoon(): void {
    if (this.#busy) return;
    this.#busy = true;
    const start = () => void this.#commitNext();
    if (this.#options.windowMs > 0) setTimeout(start, this.#options.windowMs);
    else setImmediate(start);
  }

  async #commitNext(): Promise<void> {
    const batch = this.#pending.splice(0, this.#options.maxBatch);
    await this.#commitBatch(batch);
    this.#busy = false;
    if (this.#pending.length > 0) this.#startSoon();
  }

  async #commitBatch(batch: Pending[]): Promise<void> {
    try {
      const outcomes = await this.#apply(batch.map((item) => item.change));
      this.#options.onBatch?.(batch.length);
      for (const [index, item] of batch.entries()) item.resolve(outcomes[index] as ChangeOutcome);
    } catch (error) {
      if (batch.length === 1 || error instanceof TimeoutError) {
        for (const item of batch) item.reject(error);
        return;
      }
      this.#options.log.warn(
        { err: error, batchSize: batch.length },
        'batch failed; applying its changes one by one',
      );
      for (const item of batch) {
        await this.#apply([item.change]).then(
          ([outcome]) => item.resolve(outcome as ChangeOutcome),
          item.reject,
        );
      }
    }
  }

  #apply(changes: UserChange[]): Promise<ChangeOutcome[]> {
    return withTimeout(
      applyUserChanges(this.#options.em, changes, {
        timeoutMs: this.#options.commitTimeoutMs,
      }),
      this.#options.commitTimeoutMs,
      `committing ${changes.length} change(s)`,
    );
  }
}
