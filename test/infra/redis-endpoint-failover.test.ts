import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/hooks.ts';
import { newUsers, tally } from '../support/load.ts';
import { killAllChildren } from '../support/processes.ts';
import { uniqueQueueName } from '../support/queue.ts';
import { type PrivateRedis, startPrivateRedis } from '../support/redis-server.ts';
import { type ServiceProcess, spawnServices } from '../support/services.ts';
import { deliverUntilAcknowledged, report, waitUntilStored } from '../support/stack.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { waitFor } from '../support/wait.ts';
import { command, replicationField } from './support/redis-topologies.ts';

const DELIVERIES = 300;

/**
 * A managed Redis's primary endpoint (ElastiCache, Memorystore, Azure): one name, here a TCP
 * relay, for a master with a replica. The failover promotes the replica, moves the name to it,
 * and demotes the old master to a replica of the new one: the connections made before still
 * reach it, and it answers their writes READONLY.
 */
describe('Redis failover behind a primary endpoint', () => {
  const db = useTestDatabase();
  let master: PrivateRedis;
  let replica: PrivateRedis;
  let endpoint: TcpProxy;
  let services: ServiceProcess[];
  const users = new Set<string>();

  beforeAll(async () => {
    master = await startPrivateRedis();
    replica = await startPrivateRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    await waitFor(
      async () => (await replicationField(replica.port, 'master_link_status')) === 'up',
      15_000,
      'the replica in sync',
    );
    endpoint = await startTcpProxy(master.url);
    services = await spawnServices(['receiver', 'worker'], {
      DATABASE_URL: db.url,
      REDIS_URL: endpoint.url,
      QUEUE_NAME: uniqueQueueName(),
    });
  });

  afterAll(async () => {
    await killAllChildren();
    await endpoint?.close();
    await Promise.all([master?.destroy(), replica?.destroy()]);
  });

  it('reconnects to the new master when the old one answers READONLY, with no restart', async () => {
    const receivers = services.slice(0, 1);
    const before = await deliverUntilAcknowledged(receivers, newUsers(DELIVERIES, users));
    expect(tally(before)).toEqual({ 202: DELIVERIES });
    await waitUntilStored(db, users, 30_000);
    const pids = services.map((service) => service.pid);

    await command(replica.port, 'replicaof', ['no', 'one']);
    endpoint.retarget(replica.url);
    await command(master.port, 'replicaof', ['127.0.0.1', String(replica.port)]);
    const failedOverAt = performance.now();
    const after = await deliverUntilAcknowledged(receivers, newUsers(DELIVERIES, users));
    await waitUntilStored(db, users, 30_000);

    expect(services.map((service) => service.pid)).toEqual(pids);
    expect(services.every((service) => service.isRunning())).toBe(true);
    report(
      'primary endpoint failover',
      { answers: tally(after), storedWithinMs: Math.round(performance.now() - failedOverAt) },
      'infra',
    );
  });
});
