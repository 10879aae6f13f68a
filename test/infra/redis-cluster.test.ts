import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNpmScript } from '../support/cli.ts';
import { useTestDatabase } from '../support/hooks.ts';
import { type Delivery, newUsers, send, tally } from '../support/load.ts';
import { killAllChildren } from '../support/processes.ts';
import { uniqueQueueName } from '../support/queue.ts';
import {
  metricTotal,
  type ServiceEnvironment,
  type ServiceProcess,
  spawnServices,
} from '../support/services.ts';
import { deliverUntilAcknowledged, report, waitUntilStored } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import {
  command,
  type RedisClusterSet,
  replicationField,
  startRedisCluster,
} from './support/redis-topologies.ts';

const FIRST_DELIVERIES = 2_000;
const AFTER_FAILOVER = 500;
const AFTER_POLICY = 100;

/**
 * Redis Cluster: three masters with a replica each. Two receivers and two workers keep the
 * queue in one slot (the default {clerk-sync} prefix) and follow the cluster when the master
 * owning that slot is SIGKILLed and its replica takes over.
 */
describe('Redis Cluster', () => {
  const db = useTestDatabase();
  let cluster: RedisClusterSet;
  let services: ServiceProcess[];
  let receivers: ServiceProcess[];
  let environment: ServiceEnvironment;
  const users = new Set<string>();

  beforeAll(async () => {
    cluster = await startRedisCluster();
    environment = {
      DATABASE_URL: db.url,
      REDIS_URL: cluster.url,
      QUEUE_NAME: uniqueQueueName(),
    };
    services = await spawnServices(['receiver', 'receiver', 'worker', 'worker'], environment);
    receivers = services.slice(0, 2);
  });

  afterAll(async () => {
    await killAllChildren();
    await cluster?.destroy();
  });

  it('stores 2,000 deliveries through two receivers and two workers, exactly once', async () => {
    const outcomes = await deliverUntilAcknowledged(receivers, newUsers(FIRST_DELIVERIES, users));
    expect(tally(outcomes)).toEqual({ '202': FIRST_DELIVERIES });
    await waitUntilStored(db, users, 120_000);
    // Each job ran once: the two workers completed 2,000 between them. A job counts as completed
    // only after its row is committed, so the last ones may still be counting when the rows are in.
    const completed = async () => {
      const counts = await Promise.all(
        services.slice(2).map((worker) => metricTotal(worker, 'clerk_sync_jobs_completed_total')),
      );
      return counts.reduce((sum, count) => sum + count, 0);
    };
    await waitFor(async () => (await completed()) >= FIRST_DELIVERIES, 10_000, 'every job counted');
    expect(await completed()).toBe(FIRST_DELIVERIES);
    const counts = await runNpmScript('jobs', ['counts'], environment);
    expect(counts.code, counts.output).toBe(0);
    expect(counts.stdout).toMatch(new RegExp(`^completed +${FIRST_DELIVERIES}$`, 'm'));
  });

  it("follows the failover of the master owning the queue's slot: 500 more arrive, no restart", async () => {
    const pids = services.map((service) => service.pid);
    const killedAt = performance.now();
    await cluster.killQueueMaster();
    const failedOverMs = performance.now() - killedAt;

    const outcomes = await deliverUntilAcknowledged(receivers, newUsers(AFTER_FAILOVER, users));
    const answers = tally(outcomes);
    await waitUntilStored(db, users, 60_000);
    expect(services.map((service) => service.pid)).toEqual(pids);
    expect(services.every((service) => service.isRunning())).toBe(true);
    report('cluster failover', { failedOverMs: Math.round(failedOverMs), answers }, 'infra');
  });

  it('refuses deliveries while any master may evict queued jobs, and takes them again once none may', async () => {
    const masters = [];
    for (const node of cluster.nodes.filter((node) => node.child)) {
      if ((await replicationField(node.port, 'role')) === 'master') masters.push(node);
    }
    const master = masters.at(-1) as (typeof masters)[number];
    const setPolicy = (policy: string) =>
      command(master.port, 'config', ['set', 'maxmemory-policy', policy]);
    const [receiver] = receivers as [ServiceProcess];
    // One new user at a time; an acknowledged one joins the users expected in the end.
    const answer = async () => {
      const [probe] = newUsers(1, new Set()) as [Delivery];
      const { status } = await send(receiver.url, probe);
      if (status === 202) users.add(probe.clerkUserId);
      return status;
    };

    await setPolicy('allkeys-lru');
    await waitFor(async () => (await answer()) === 503, 15_000, 'a delivery refused');
    expect(receiver.output.join('\n')).toContain(
      'Redis may evict queued deliveries (maxmemory-policy allkeys-lru)',
    );
    await setPolicy('noeviction');
    await waitFor(async () => (await answer()) === 202, 15_000, 'a delivery accepted');
    const outcomes = await deliverUntilAcknowledged(receivers, newUsers(AFTER_POLICY, users));
    expect(tally(outcomes)).toEqual({ '202': AFTER_POLICY });
    await waitUntilStored(db, users, 60_000);
  });
});
