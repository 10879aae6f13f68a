import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { applyUserChanges } from '../src/users/apply-user-changes.ts';
import type { UserChange } from '../src/users/user-change.ts';
import { GroupCommit } from '../src/workers/group-commit.ts';
import { COMMIT_TIMEOUT_MS } from '../src/workers/webhook-worker.ts';
import { clerkUser, remove, upsert } from '../test/support/clerk-user.ts';
import { newClerkUserIds } from '../test/support/load.ts';
import { ownCpuMicros } from './cpu.ts';
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

type ChangeCpu = Record<'create' | 'update' | 'delete', number>;

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
    /** CPU this process spends per call of `each`, `count` calls one after another. */
    const cpuPerCall = async (count: number, each: (index: number) => Promise<unknown>) => {
      const before = ownCpuMicros();
      for (let index = 0; index < count; index++) await each(index);
      return (ownCpuMicros() - before) / count;
    };
    /** CPU per change of creating, updating and deleting `changes` new users, one at a time. */
    const cpuOfEach = async (apply: (change: UserChange) => Promise<unknown>) => {
      const cpuPerChange = (batch: UserChange[]) =>
        cpuPerCall(batch.length, (index) => apply(batch[index] as UserChange));
      await cpuPerChange(newClerkUserIds(WARMUP).map((id) => upsert(clerkUser(id))));
      const users = newClerkUserIds(changes);
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
    const emptyTransactionMicros = await cpuPerCall(changes, () =>
      database.em.transactional(async () => {}),
    );
    return { changes, cpuMicros, batchWriterMicros, emptyTransactionMicros };
  });
}

/** "create …, update …, delete … µs" */
export function formatChangeCpu(cpu: ChangeCpu): string {
  return `create ${Math.round(cpu.create)}, update ${Math.round(cpu.update)}, delete ${Math.round(cpu.delete)} µs`;
}
