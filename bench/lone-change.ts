import { clerkId } from '../src/clerk/sample-events.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { applyUserChanges } from '../src/users/apply-user-changes.ts';
import type { UserChange } from '../src/users/user-change.ts';
import { GroupCommit } from '../src/workers/group-commit.ts';
import { COMMIT_TIMEOUT_MS } from '../src/workers/webhook-worker.ts';
import { clerkUser, remove, upsert } from '../test/support/clerk-user.ts';
import { freshDatabase, Scope } from './fixtures.ts';

const WARMUP = 300;

export interface LoneChangeResult {
  changes: number;
  /** CPU per change committed on its own, in microseconds, by what the change does. */
  cpuMicros: ChangeCpu;
  /**
   * The same changes, each on its own, through the batch writer instead of the unit of work:
   * what is left without MikroORM's change tracking.
   */
  batchWriterMicros: ChangeCpu;
  /** What an empty transaction (begin, commit) costs through MikroORM: the floor under each. */
  emptyTransactionMicros: number;
}

export interface ChangeCpu {
  create: number;
  update: number;
  delete: number;
}

/**
 * One change at a time through the worker's own group commit (its default batch settings), in
 * this process, nothing else running: a user created, then changed, then deleted, `changes`
 * times each, the CPU this process spends counted around each phase. The changes are built
 * before the clock starts; the worker's job handling (BullMQ, parsing, metrics) is not in it.
 * Then the same through the batch writer, and empty transactions.
 */
export function measureLoneChange(changes: number): Promise<LoneChangeResult> {
  return Scope.run(async (scope) => {
    const database = await freshDatabase(scope);
    const config = loadConfig({ ...process.env, DATABASE_URL: database.url });
    const commit = new GroupCommit({
      em: database.em,
      log: createLogger({ level: 'silent' }),
      maxBatch: config.workerBatchSize,
      windowMs: config.workerBatchWindowMs,
      commitTimeoutMs: COMMIT_TIMEOUT_MS,
    });
    const ids = (count: number) => Array.from({ length: count }, () => clerkId('user'));
    /** CPU per change of creating, updating and deleting `changes` new users, one at a time. */
    const cpuOfEach = async (apply: (change: UserChange) => Promise<unknown>) => {
      const cpuPerChange = async (batch: UserChange[]) => {
        const before = process.cpuUsage();
        for (const change of batch) await apply(change);
        const used = process.cpuUsage(before);
        return (used.user + used.system) / batch.length;
      };
      await cpuPerChange(ids(WARMUP).map((id) => upsert(clerkUser(id))));
      const users = ids(changes);
      return {
        create: await cpuPerChange(users.map((id) => upsert(clerkUser(id, { at: 1_000 })))),
        update: await cpuPerChange(
          users.map((id) => upsert(clerkUser(id, { email: `new.${id}@example.com`, at: 2_000 }))),
        ),
        delete: await cpuPerChange(users.map(remove)),
      };
    };
    const cpuMicros = await cpuOfEach((change) => commit.apply(change));
    const batchWriterMicros = await cpuOfEach((change) =>
      applyUserChanges(database.em, [change], { bulk: true }),
    );
    const emptyBefore = process.cpuUsage();
    for (let index = 0; index < changes; index++) await database.em.transactional(async () => {});
    const empty = process.cpuUsage(emptyBefore);
    return {
      changes,
      cpuMicros,
      batchWriterMicros,
      emptyTransactionMicros: (empty.user + empty.system) / changes,
    };
  });
}

/** "create …, update …, delete … µs" */
export function formatChangeCpu(cpu: ChangeCpu): string {
  return `create ${Math.round(cpu.create)}, update ${Math.round(cpu.update)}, delete ${Math.round(cpu.delete)} µs`;
}
