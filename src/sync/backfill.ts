import type { ClerkClient, UserJSON } from '@clerk/backend';
import type { EntityManager } from '@mikro-orm/postgresql';
import { type ApiRetryEvents, PAGE_SIZE, readUserPages } from '../clerk/api.ts';
import { SyncCheckpoint } from '../entities/index.ts';
import { InvalidPayloadError } from '../errors.ts';
import {
  applyUserChanges,
  type ChangeOutcome,
  type UserChange,
} from '../users/apply-user-changes.ts';
import { upsertOf } from '../users/user-change.ts';
import type { Progress } from './progress.ts';

export const BACKFILL_CHECKPOINT = 'backfill';

export type BackfillCounts = Record<ChangeOutcome | 'invalid', number>;

export interface BackfillResult {
  counts: BackfillCounts;
  total: number;
  seen: number;
  resumedFrom: number;
  seconds: number;
}

export interface BackfillOptions {
  em: EntityManager;
  client: ClerkClient;
  progress?: Progress;
  dryRun?: boolean;
  restart?: boolean;
  api?: ApiRetryEvents;
}

/**
 * Imports every Clerk user, oldest first, a page of 500 per transaction, with the webhook
 * rules: default preferences for new users, nothing older than what is stored, no deleted user
 * brought back. Each page's rows and the checkpoint after it commit together, so an
 * interrupted run resumes at its last committed page (read again: users deleted while it was
 * stopped have shifted the offsets). The page after next is fetched, and the next one written,
 * while the current one commits.
 */
export async function runBackfill(options: BackfillOptions): Promise<BackfillResult> {
  const { em, client, progress } = options;
  const startedAt = performance.now();
  const counts = emptyCounts();
  if (options.restart && !options.dryRun)
    await em.fork().nativeDelete(SyncCheckpoint, { name: BACKFILL_CHECKPOINT });
  const resumedFrom = options.dryRun || options.restart ? 0 : await checkpointOffset(em);

  let seen = 0;
  let total: number | undefined;
  let previous: PageWrite = { locked: Promise.resolve(), committed: Promise.resolve([]) };
  const writing: Promise<void>[] = [];
  try {
    for await (const page of readUserPages(client, resumedFrom - PAGE_SIZE, options.api)) {
      if (total === undefined) progress?.start(page.totalCount, resumedFrom);
      total = page.totalCount;
      const { changes, invalid } = toChanges(page.users);
      counts.invalid += invalid;
      previous = writePage(em, changes, page.end, options.dryRun ?? false, previous);
      const counted = previous.committed.then((outcomes) => {
        for (const outcome of outcomes) counts[outcome]++;
        seen += page.users.length;
        progress?.update(page.end, Math.max(page.totalCount, page.end));
      });
      // Awaited below; until then a failure must not count as unhandled.
      counted.catch(() => undefined);
      writing.push(counted);
      if (writing.length >= PAGES_IN_FLIGHT) await writing.shift();
    }
    for (const counted of writing.splice(0)) await counted;
  } finally {
    // A page that failed to arrive leaves the ones before it to commit, as if written one by one.
    await Promise.allSettled(writing);
  }
  // Only an interrupted run resumes; the next run after a finished one reads every user again.
  if (!options.dryRun) await em.fork().nativeDelete(SyncCheckpoint, { name: BACKFILL_CHECKPOINT });
  progress?.stop();
  return {
    counts,
    total: total ?? 0,
    seen,
    resumedFrom,
    seconds: (performance.now() - startedAt) / 1000,
  };
}

/** Pages in the works at once: the next page is locked, read and written while the one before commits. */
const PAGES_IN_FLIGHT = 2;

interface PageWrite {
  /** Settles once the page holds its users' locks (or has failed). */
  locked: Promise<void>;
  /** The page's outcomes, once it has committed. */
  committed: Promise<ChangeOutcome[]>;
}

/**
 * Writes a page in its own transaction while the page before may still be writing. The two
 * cannot deadlock: this page asks for its locks only once the one before holds all of its own,
 * so it waits on a user they share, never the other way round. The page commits, with the
 * checkpoint after it, only after the one before has committed: the checkpoint never passes a
 * page that is not stored, and a page whose predecessor failed rolls back.
 */
function writePage(
  em: EntityManager,
  changes: UserChange[],
  nextOffset: number,
  dryRun: boolean,
  previous: PageWrite,
): PageWrite {
  if (dryRun) {
    // Nothing is locked or written: pages are only read, one after the other.
    const committed = previous.committed.then(() => applyUserChanges(em, changes, { dryRun }));
    return { locked: Promise.resolve(), committed };
  }
  const { promise: locked, resolve } = Promise.withResolvers<void>();
  const onLocked = () => resolve();
  const committed = previous.locked.then(() =>
    em.fork().transactional(async (tx) => {
      const outcomes = await applyUserChanges(tx, changes, { onLocked });
      await previous.committed;
      await tx.upsert(SyncCheckpoint, {
        name: BACKFILL_CHECKPOINT,
        nextOffset,
        updatedAt: new Date(),
      });
      return outcomes;
    }),
  );
  committed.then(onLocked, onLocked);
  return { locked, committed };
}

function toChanges(users: readonly UserJSON[]): { changes: UserChange[]; invalid: number } {
  const changes: UserChange[] = [];
  let invalid = 0;
  for (const raw of users) {
    try {
      changes.push(upsertOf(raw));
    } catch (error) {
      if (!(error instanceof InvalidPayloadError)) throw error;
      invalid++;
    }
  }
  return { changes, invalid };
}

async function checkpointOffset(em: EntityManager): Promise<number> {
  const checkpoint = await em.fork().findOne(SyncCheckpoint, { name: BACKFILL_CHECKPOINT });
  return checkpoint?.nextOffset ?? 0;
}

/** Every outcome the summary counts, at zero. */
export function emptyCounts(): BackfillCounts {
  return {
    created: 0,
    updated: 0,
    unchanged: 0,
    stale: 0,
    deleted_earlier: 0,
    no_email: 0,
    invalid: 0,
    deleted: 0,
    absent: 0,
  };
}

/** The closing summary: what was created, updated, left alone, and skipped and why. */
export function formatBackfillSummary(result: BackfillResult, dryRun: boolean): string {
  const { counts } = result;
  const skipped = counts.stale + counts.deleted_earlier + counts.no_email + counts.invalid;
  const rate = Math.round(result.seen / Math.max(result.seconds, 0.001));
  const lines = [
    `${dryRun ? 'backfill dry run (nothing written)' : 'backfill finished'}: ${result.seen} users in ${result.seconds.toFixed(1)} s (${rate} users/s)${result.resumedFrom ? `, resumed after ${result.resumedFrom}` : ''}`,
    `  ${dryRun ? 'would create' : 'created'}    ${counts.created}`,
    `  ${dryRun ? 'would update' : 'updated'}    ${counts.updated}`,
    `  unchanged  ${counts.unchanged}`,
    `  skipped    ${skipped} (older than stored: ${counts.stale}, deleted by a webhook: ${counts.deleted_earlier}, no email address: ${counts.no_email}, malformed: ${counts.invalid})`,
  ];
  return lines.join('\n');
}
