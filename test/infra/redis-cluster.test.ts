import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_QUEUE_PREFIX } from '../../src/config.ts';
import { runNpmScript } from '../support/cli.ts';
import { useTestDatabase } from '../support/hooks.ts';
import {
  type Delivery,
  isAcknowledged,
  newUsers,
  type Outcome,
  sendAll,
  tally,
} from '../support/load.ts';
import { killAllChildren } from '../support/processes.ts';
import { uniqueQueueName } from '../support/queue.ts';
import {
  metricTotal,
  type ServiceEnvironment,
  type ServiceProcess,
  spawnService,
} from '../support/services.ts';
import { report, waitUntilStored } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { type RedisClusterSet, startRedisCluster } from './support/redis-topologies.ts';

const FIRST_DELIVERIES = 2_000;
const AFTER_FAILOVER = 500;
/** The hash tag of the default cluster prefix: every key of the queue is in this key's slot. */
const QUEUE_SLOT_KEY = CLUSTER_QUEUE_PREFIX.slice(1, -1);

/**
 * Sends each delivery to one of the receivers in turn and, as Svix does, sends again whatever
 * was not acknowledged, until all are. Returns every answer.
 */
async function deliverAll(receivers: ServiceProcess[], deliveries: Delivery[]): Promise<Outcome[]> {
  const answers: Outcome[] = [];
  let pending = deliveries;
  for (let round = 0; pending.length > 0; round++) {
    if (round > 0) await new Promise((resolve) => setTimeout(resolve, 500));
    if (round > 30) throw new Error(`${pending.length} deliveries never acknowledged`);
    const outcomes = (
      await Promise.all(
        receivers.map((receiver, index) =>
          sendAll(
            receiver.url,
            pending.filter((_, position) => position % receivers.length === index),
            16,
          ),
        ),
      )
    ).flat();
    answers.push(...outcomes);
    pending = outcomes.filter((outcome) => !isAcknowledged(outcome)).map((o) => o.delivery);
  }
  return answers;
}

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
    services = await Promise.all([
      spawnService('receiver', environment),
      spawnService('receiver', environment),
      spawnService('worker', environment),
      spawnService('worker', environment),
    ]);
    receivers = services.slice(0, 2);
  });

  afterAll(async () => {
    await killAllChildren();
    await cluster?.destroy();
  });

  it('stores 2,000 deliveries through two receivers and two workers, exactly once', async () => {
    const outcomes = await deliverAll(receivers, newUsers(FIRST_DELIVERIES, users));
    expect(tally(outcomes)).toEqual({ '202': FIRST_DELIVERIES });
    await waitUntilStored(db, users, 120_000);
    // Each job ran once: the two workers completed 2,000 between them.
    const completed = await Promise.all(
      services.slice(2).map((worker) => metricTotal(worker, 'clerk_sync_jobs_completed_total')),
    );
    expect(completed.reduce((sum, count) => sum + count, 0)).toBe(FIRST_DELIVERIES);
    const counts = await runNpmScript('jobs', ['counts'], environment);
    expect(counts.code, counts.output).toBe(0);
    expect(counts.stdout).toMatch(new RegExp(`^completed +${FIRST_DELIVERIES}$`, 'm'));
  });

  it("follows the failover of the master owning the queue's slot: 500 more arrive, no restart", async () => {
    const pids = services.map((service) => service.pid);
    const ownerPort = await cluster.masterPortForKey(QUEUE_SLOT_KEY, cluster.nodes[0]?.port ?? 0);
    const owner = cluster.nodes.find((node) => node.port === ownerPort);
    const survivor = cluster.nodes.find(
      (node) => node.port !== ownerPort,
    ) as (typeof cluster.nodes)[number];
    const killedAt = performance.now();
    await owner?.kill();
    await waitFor(
      async () =>
        (await cluster.masterPortForKey(QUEUE_SLOT_KEY, survivor.port)) !== ownerPort &&
        (await cluster.isHealthy()),
      30_000,
      "a replica serving the queue's slot",
    );
    const failedOverMs = performance.now() - killedAt;

    const outcomes = await deliverAll(receivers, newUsers(AFTER_FAILOVER, users));
    const answers = tally(outcomes);
    // Refusals are 503 (Svix retries them); never another 5xx, never a request left hanging.
    expect(Object.keys(answers).filter((status) => status !== '202' && status !== '503')).toEqual(
      [],
    );
    await waitUntilStored(db, users, 60_000);
    expect(services.map((service) => service.pid)).toEqual(pids);
    expect(services.every((service) => service.isRunning())).toBe(true);
    report('cluster failover', { failedOverMs: Math.round(failedOverMs), answers }, 'infra');
  });
});
