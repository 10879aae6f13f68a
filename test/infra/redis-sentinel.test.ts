import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNpmScript } from '../support/cli.ts';
import { sql, type TestDatabase } from '../support/database.ts';
import { useTestDatabase } from '../support/hooks.ts';
import {
  isAcknowledged,
  maxMs,
  startSteadyLoad,
  type TimedOutcome,
  tally,
} from '../support/load.ts';
import { killAllChildren } from '../support/processes.ts';
import { uniqueQueueName } from '../support/queue.ts';
import {
  type ServiceEnvironment,
  type ServiceProcess,
  spawnServices,
} from '../support/services.ts';
import { report } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import {
  replicationField,
  type SentinelSet,
  startSentinelSet,
} from './support/redis-topologies.ts';

/** The receiver answers 503 within this long while Redis is unreachable. */
const UNAVAILABLE_WITHIN_MS = 5_000;
/** Deliveries accepted in a row after the failover before the steady traffic stops. */
const ACCEPTED_AFTER_FAILOVER = 100;

/** The Clerk ids of these users that have a row, and how many preferences rows each has. */
async function storedUsers(db: TestDatabase, ids: Iterable<string>): Promise<Map<string, number>> {
  const rows = await sql<{ clerk_user_id: string; preferences: number }>(
    db,
    `select u.clerk_user_id, count(p.id)::int as preferences
       from users u left join user_preferences p on p.user_id = u.id
      where u.clerk_user_id in (?) group by u.clerk_user_id`,
    [[...ids]],
  );
  return new Map(rows.map((row) => [row.clerk_user_id, row.preferences]));
}

const idsOf = (outcomes: readonly TimedOutcome[]) =>
  outcomes.filter(isAcknowledged).map((outcome) => outcome.delivery.clerkUserId);

/**
 * Redis Sentinel: a master, its replica and three sentinels. Under steady deliveries the master
 * is SIGKILLed; the receiver refuses (503) until the sentinels have promoted the replica, then
 * takes deliveries again, and the worker goes on, with no process restarted.
 */
describe('Redis Sentinel failover', () => {
  const db = useTestDatabase();
  let set: SentinelSet;
  let receiver: ServiceProcess;
  let worker: ServiceProcess;
  let environment: ServiceEnvironment;

  beforeAll(async () => {
    set = await startSentinelSet();
    environment = { DATABASE_URL: db.url, REDIS_URL: set.url, QUEUE_NAME: uniqueQueueName() };
    [receiver, worker] = await spawnServices(['receiver', 'worker'], environment);
  });

  afterAll(async () => {
    await killAllChildren();
    await set?.destroy();
  });

  it('refuses with 503 until the replica is promoted, then takes deliveries again; nothing acknowledged and replicated is lost', async () => {
    const pids = [receiver.pid, worker.pid];
    const users = new Set<string>();
    const load = startSteadyLoad(receiver.url, users, { lanes: 2, pauseMs: 20 });
    await waitFor(() => idsOf(load.outcomes).length >= 100, 30_000, '100 deliveries acknowledged');

    // Everything acknowledged by now is at most at this offset; once the replica has it, the
    // replica holds every one of these deliveries.
    const replicatedAcks = idsOf(load.outcomes);
    const offset = Number(await replicationField(set.master.port, 'master_repl_offset'));
    await waitFor(
      async () => Number(await replicationField(set.replica.port, 'slave_repl_offset')) >= offset,
      10_000,
      `the replica at offset ${offset}`,
    );
    const ackedBeforeKill = idsOf(load.outcomes);
    const killedAt = performance.now();
    await set.master.kill();

    await waitFor(async () => (await set.masterPort()) === set.replica.port, 30_000, 'promotion');
    const promotedAt = performance.now();
    await waitFor(
      () => {
        const after = load.outcomes.filter((outcome) => outcome.answeredAt > promotedAt);
        return after.slice(-ACCEPTED_AFTER_FAILOVER).filter(isAcknowledged).length ===
          ACCEPTED_AFTER_FAILOVER
          ? after
          : undefined;
      },
      30_000,
      `${ACCEPTED_AFTER_FAILOVER} deliveries acknowledged in a row after the promotion`,
    );
    const outcomes = await load.stop();

    const afterKill = outcomes.filter((outcome) => outcome.answeredAt > killedAt);
    const refused = afterKill.filter((outcome) => !isAcknowledged(outcome));
    const firstAcceptedAgain = afterKill.find(
      (outcome) => isAcknowledged(outcome) && outcome.answeredAt > (refused[0]?.answeredAt ?? 0),
    );
    // Only 202 or 503, each answered in time: no other 5xx, no request left hanging.
    expect(Object.keys(tally(outcomes)).sort()).toEqual(['202', '503']);
    expect(maxMs(refused)).toBeLessThan(UNAVAILABLE_WITHIN_MS);
    expect(refused.length).toBeGreaterThan(0);

    // Every delivery acknowledged after the kill went to the promoted replica, and every one
    // acknowledged before it that the replica had received is there too: all are stored.
    const mustArrive = new Set([...replicatedAcks, ...idsOf(afterKill)]);
    await waitFor(
      async () => (await storedUsers(db, mustArrive)).size === mustArrive.size,
      60_000,
      `${mustArrive.size} users stored`,
    );
    const stored = await storedUsers(db, users);
    expect([...stored.values()].every((preferences) => preferences === 1)).toBe(true);
    expect([...mustArrive].filter((id) => !stored.has(id))).toEqual([]);

    expect([receiver.pid, worker.pid]).toEqual(pids);
    // The commands find the promoted master through the sentinels too.
    const counts = await runNpmScript('jobs', ['counts'], environment);
    expect(counts.code, counts.output).toBe(0);
    expect(counts.stdout).toMatch(/^failed +0$/m);
    expect(receiver.isRunning() && worker.isRunning()).toBe(true);

    // What asynchronous replication can lose: acknowledged between the offset check and the kill.
    const window = ackedBeforeKill.filter((id) => !replicatedAcks.includes(id));
    report(
      'sentinel failover',
      {
        refusedMs: Math.round((firstAcceptedAgain?.answeredAt ?? Number.NaN) - killedAt),
        promotedAfterMs: Math.round(promotedAt - killedAt),
        refused: refused.length,
        slowest503Ms: maxMs(refused),
        acknowledged: idsOf(outcomes).length,
        ackedInReplicationWindow: window.length,
        lostInReplicationWindow: window.filter((id) => !stored.has(id)).length,
      },
      'infra',
    );
  });
});
