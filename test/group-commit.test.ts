import { describe, expect, it } from 'vitest';
import { clerkId } from '../src/clerk/sample-events.ts';
import { TimeoutError } from '../src/errors.ts';
import { GroupCommit, type GroupCommitOptions } from '../src/workers/group-commit.ts';
import { clerkUser, upsert } from './support/clerk-user.ts';
import { countRows, holdUserLock } from './support/database.ts';
import { useTestDatabase } from './support/hooks.ts';
import { capturingLogger } from './support/logs.ts';

const db = useTestDatabase();

const upsertOf = (id: string) => upsert(clerkUser(id));

/** A group commit on the suite's database: batches of up to 100, started at once, 10 s to commit. */
function groupCommit(options: Partial<GroupCommitOptions> = {}): GroupCommit {
  return new GroupCommit({
    em: db.em,
    log: capturingLogger().log,
    maxBatch: 100,
    windowMs: 0,
    commitTimeoutMs: 10_000,
    ...options,
  });
}

describe('group commit', () => {
  it('commits the changes of concurrent jobs together, each with its own outcome', async () => {
    const batches: number[] = [];
    const commit = groupCommit({
      maxBatch: 25,
      windowMs: 50,
      onBatch: (size) => batches.push(size),
    });
    const ids = Array.from({ length: 100 }, () => clerkId('user'));
    const changes = [
      ...ids.map(upsertOf),
      upsertOf(ids[0] as string),
      { kind: 'delete' as const, clerkUserId: ids[1] as string },
    ];

    const outcomes = await Promise.all(changes.map((change) => commit.apply(change)));

    expect(outcomes.slice(0, 100).every((outcome) => outcome === 'created')).toBe(true);
    expect(outcomes.slice(100)).toEqual(['unchanged', 'deleted']);
    // One batch commits at a time; the changes waiting meanwhile make up the next.
    expect(batches).toEqual([25, 25, 25, 25, 2]);
    expect(await countRows(db, 'users', 'clerk_user_id in (?)', [ids])).toBe(99);
    expect(await countRows(db, 'user_preferences')).toBe(await countRows(db, 'users'));
  });

  it('with batches of one, commits each change on its own, side by side', async () => {
    const batches: number[] = [];
    const commit = groupCommit({ maxBatch: 1, onBatch: (size) => batches.push(size) });
    const [held, free] = [clerkId('user'), clerkId('user')];
    const holder = await holdUserLock(db, held);

    const heldOutcome = commit.apply(upsertOf(held));
    // Not queued behind the change that waits for its lock.
    expect(await commit.apply(upsertOf(free))).toBe('created');
    await holder.release();

    expect(await heldOutcome).toBe('created');
    expect(batches).toEqual([1, 1]);
  });

  it('collects the changes that arrive while a batch commits into the next batch', async () => {
    const batches: number[] = [];
    const commit = groupCommit({ onBatch: (size) => batches.push(size) });
    const [first, ...later] = Array.from({ length: 11 }, () => clerkId('user'));
    // Another transaction holds the first user's lock, so the first batch stays committing.
    const holder = await holdUserLock(db, first as string);

    const firstOutcome = commit.apply(upsertOf(first as string));
    const laterOutcomes: Promise<unknown>[] = [];
    for (const id of later) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      laterOutcomes.push(commit.apply(upsertOf(id)));
    }
    await holder.release();

    expect(await firstOutcome).toBe('created');
    expect(await Promise.all(laterOutcomes)).toEqual(Array(10).fill('created'));
    expect(batches).toEqual([1, 10]);
  });

  it('fails a batch that does not commit in time, and goes on with the next', async () => {
    const commit = groupCommit({ commitTimeoutMs: 300 });
    const [stuck, other] = [clerkId('user'), clerkId('user')];
    // A lock that is never granted in time stands in for a connection that never answers.
    const holder = await holdUserLock(db, stuck);

    const stuckOutcome = commit.apply(upsertOf(stuck));
    await expect(stuckOutcome).rejects.toThrow(TimeoutError);
    const otherOutcome = await commit.apply(upsertOf(other));
    await holder.release();

    expect(otherOutcome).toBe('created');
    expect(await countRows(db, 'users', 'clerk_user_id = ?', [other])).toBe(1);
  });

  it('falls back to one change at a time when a batch fails, so a bad change fails alone', async () => {
    const { log, records } = capturingLogger();
    const commit = groupCommit({ log, maxBatch: 10, windowMs: 50 });
    const good = Array.from({ length: 5 }, () => clerkId('user'));
    // PostgreSQL text cannot hold NUL, so this change fails in the database, taking its batch with it.
    const poison = upsert({ ...clerkUser('user_bad'), id: 'user_bad\u0000id' });

    const results = await Promise.allSettled(
      [...good.map(upsertOf), poison].map((change) => commit.apply(change)),
    );

    expect(results.slice(0, 5).map((result) => result.status)).toEqual(Array(5).fill('fulfilled'));
    expect(results[5]?.status).toBe('rejected');
    expect(await countRows(db, 'users', 'clerk_user_id in (?)', [good])).toBe(5);
    expect(
      records().some((record) => record.msg === 'batch failed; applying its changes one by one'),
    ).toBe(true);
  });
});
