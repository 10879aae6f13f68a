import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNpmScript } from '../support/cli.ts';
import { sql } from '../support/database.ts';
import { useTestDatabase } from '../support/hooks.ts';
import { newUsers } from '../support/load.ts';
import { killAllChildren } from '../support/processes.ts';
import { uniqueQueueName } from '../support/queue.ts';
import { type PrivateRedis, startPrivateRedis } from '../support/redis-server.ts';
import { spawnServices } from '../support/services.ts';
import {
  deliverUntilAcknowledged,
  sendAllAcknowledged,
  waitUntilStored,
} from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { useCertificates } from './support/certificates.ts';
import { startRedisCluster, startSentinelSet } from './support/redis-topologies.ts';

const PASSWORD = 'tls-only s3cret';

/**
 * A managed Redis's shape: TLS only (the plain port is off), a certificate from a private CA
 * that Node trusts through NODE_EXTRA_CA_CERTS, and a password in the URL.
 */
describe('Redis with TLS only', () => {
  const certs = useCertificates();
  const db = useTestDatabase();
  let redis: PrivateRedis;
  let redisUrl: string;

  beforeAll(async () => {
    redis = await startPrivateRedis({ tls: certs, args: ['--requirepass', PASSWORD] });
    redisUrl = `rediss://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${redis.port}`;
  });

  afterAll(async () => {
    await killAllChildren();
    await redis?.destroy();
  });

  it('carries deliveries end to end, and npm run jobs reads the queue', async () => {
    const queueName = uniqueQueueName();
    const environment = {
      DATABASE_URL: db.url,
      REDIS_URL: redisUrl,
      QUEUE_NAME: queueName,
      NODE_EXTRA_CA_CERTS: certs.ca,
    };
    const [receiver, worker] = await spawnServices(['receiver', 'worker'], environment);
    const users = new Set<string>();
    await sendAllAcknowledged(receiver.url, newUsers(100, users), 16);
    await waitUntilStored(db, users, 30_000);

    const counts = await runNpmScript('jobs', ['counts'], environment);
    expect(counts.code, counts.output).toBe(0);
    expect(counts.stdout).toMatch(/^completed +100$/m);
    for (const service of [receiver, worker]) {
      expect(service.output.join('\n')).not.toContain(PASSWORD);
    }
  });

  it('refuses the server without the private CA: one line naming REDIS_URL, no password', async () => {
    const { code, stderr } = await runNpmScript('jobs', ['counts'], {
      REDIS_URL: redisUrl,
      QUEUE_NAME: uniqueQueueName(),
      NODE_EXTRA_CA_CERTS: undefined,
    });
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(
          `^clerk-sync: REDIS_URL: cannot connect to 127\\.0\\.0\\.1:${redis.port}: .*certificate`,
        ),
      ),
    ]);
  });
});

/**
 * A managed, highly available Redis's shape, TLS only everywhere: a master, its replica and
 * three sentinels found through rediss+sentinel://, and a cluster of three masters with a
 * replica each (TLS on the cluster bus too) found through rediss+cluster://. In each, a master
 * is killed and its replica takes over.
 */
describe('Redis Sentinel and Cluster with TLS only', () => {
  const certs = useCertificates();
  const db = useTestDatabase();

  afterAll(() => killAllChildren());

  /**
   * A receiver and a worker on `redisUrl`, trusting the test CA: 50 deliveries stored, then
   * `failOver()`, then 50 more stored, each refused (503) delivery sent again, as Svix does.
   */
  async function deliverAcrossFailover(redisUrl: string, failOver: () => Promise<void>) {
    const environment = {
      DATABASE_URL: db.url,
      REDIS_URL: redisUrl,
      QUEUE_NAME: uniqueQueueName(),
      NODE_EXTRA_CA_CERTS: certs.ca,
    };
    const [receiver, worker] = await spawnServices(['receiver', 'worker'], environment);
    // Each topology's users are counted on their own.
    await sql(db, 'truncate users, user_preferences cascade');
    const users = new Set<string>();
    await sendAllAcknowledged(receiver.url, newUsers(50, users), 8);
    await waitUntilStored(db, users, 30_000);
    await failOver();
    await deliverUntilAcknowledged([receiver], newUsers(50, users));
    await waitUntilStored(db, users, 30_000);
    await Promise.all([receiver.stop(), worker.stop()]);
  }

  it('carries deliveries through rediss+sentinel://, before and after a failover', async () => {
    const set = await startSentinelSet({ tls: certs });
    try {
      expect(set.url).toMatch(/^rediss\+sentinel:\/\//);
      await deliverAcrossFailover(set.url, async () => {
        await set.master.kill();
        await waitFor(
          async () => (await set.masterPort()) === set.replica.port,
          30_000,
          'the sentinels to promote the replica',
        );
      });
    } finally {
      await set.destroy();
    }
  });

  it('carries deliveries through rediss+cluster://, before and after a failover', async () => {
    const cluster = await startRedisCluster({ tls: certs });
    try {
      expect(cluster.url).toMatch(/^rediss\+cluster:\/\//);
      await deliverAcrossFailover(cluster.url, () => cluster.killQueueMaster());
    } finally {
      await cluster.destroy();
    }
  });
});
