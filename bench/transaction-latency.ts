/**
 * The floor under receipt-to-row: one new user at a time through the unit of work (what the
 * worker commits for a lone delivery) into a fresh database, nothing else running, at about
 * 100 a second; and, over the same period, how late a timer fires in this process, which is
 * the machine's own scheduling noise.
 *   node bench/transaction-latency.ts            (CHANGES=3000 for a longer run)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { clerkId, sampleUserEvent } from '../src/clerk/sample-events.ts';
import { applyUserChanges } from '../src/users/apply-user-changes.ts';
import { clerkUserSchema } from '../src/users/clerk-user.ts';
import { freshDatabase, Scope } from './fixtures.ts';
import { percentile } from './stats.ts';

const CHANGES = Number(process.env.CHANGES ?? 1_500);
const WARMUP = 200;
const PAUSE_MS = 8;

await Scope.run(async (scope) => {
  const database = await freshDatabase(scope);
  const newUser = () =>
    clerkUserSchema.parse(sampleUserEvent('user.created', { id: clerkId('user') }).data);
  const commits: number[] = [];
  const lateness: number[] = [];
  for (let index = 0; index < WARMUP + CHANGES; index++) {
    const startedAt = performance.now();
    await applyUserChanges(database.em.fork(), [{ kind: 'upsert', user: newUser() }]);
    const committedAt = performance.now();
    await sleep(PAUSE_MS);
    if (index < WARMUP) continue;
    commits.push(committedAt - startedAt);
    lateness.push(performance.now() - committedAt - PAUSE_MS);
  }
  const figures = (values: number[]) =>
    [50, 99].map((p) => `p${p} ${percentile(values, p).toFixed(1)}`).join(', ') +
    `, max ${Math.max(...values).toFixed(1)} ms`;
  console.log(`one new user per transaction, ${CHANGES} in a row: ${figures(commits)}`);
  console.log(`a ${PAUSE_MS} ms timer in the same process fired late by: ${figures(lateness)}`);
});
