import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { CLUSTER_QUEUE_PREFIX } from '../../../src/config.ts';
import { type PrivateRedis, startPrivateRedis, type TlsFiles } from '../../support/redis-server.ts';
import { waitFor } from '../../support/wait.ts';

const run = promisify(execFile);
/** The hash tag of the default cluster prefix: every key of the queue is in this key's slot. */
const QUEUE_SLOT_KEY = CLUSTER_QUEUE_PREFIX.slice(1, -1);
const MASTER_NAME = 'mymaster';
const SETTLE_TIMEOUT_MS = 30_000;

/** Runs one command on one server (over TLS with `tls`) and closes the connection. */
export async function command(
  port: number,
  name: string,
  args: string[] = [],
  tls?: TlsFiles,
): Promise<unknown> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    ...(tls ? { tls: { ca: readFileSync(tls.ca) } } : {}),
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call(name, ...args);
  } finally {
    client.disconnect();
  }
}

/** One field of INFO replication (`master_repl_offset`, `role`…) of the server on `port`. */
export async function replicationField(
  port: number,
  field: string,
  tls?: TlsFiles,
): Promise<string | undefined> {
  const info = String(await command(port, 'info', ['replication'], tls));
  return info.match(new RegExp(`^${field}:(.*)\\r?$`, 'm'))?.[1]?.trim();
}

/**
 * A master, its replica and three sentinels watching them (quorum 2), each a redis-server of
 * the test's own. The sentinels call the master down after a second without answers. With
 * `tls`, every one of them speaks TLS only, to clients and to each other.
 */
export interface SentinelSet {
  master: PrivateRedis;
  replica: PrivateRedis;
  sentinels: PrivateRedis[];
  /** redis+sentinel://…/mymaster (rediss+sentinel with TLS), naming the three sentinels. */
  url: string;
  /** The master's port as the first sentinel now reports it. */
  masterPort(): Promise<number>;
  destroy(): Promise<void>;
}

export async function startSentinelSet(options: { tls?: TlsFiles } = {}): Promise<SentinelSet> {
  const { tls } = options;
  const started: PrivateRedis[] = [];
  // Replicas and sentinels reach the others over TLS too.
  const tlsOutgoing = tls ? ['--tls-replication', 'yes'] : [];
  const start = async ({
    args = [],
    ...rest
  }: NonNullable<Parameters<typeof startPrivateRedis>[0]>) => {
    const server = await startPrivateRedis({ ...rest, tls, args: [...args, ...tlsOutgoing] });
    started.push(server);
    return server;
  };
  const destroy = async () => {
    await Promise.all(started.map((server) => server.destroy()));
  };
  try {
    const master = await start({});
    const replica = await start({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    await waitFor(
      async () => (await replicationField(replica.port, 'master_link_status', tls)) === 'up',
      SETTLE_TIMEOUT_MS,
      'the replica in sync',
    );
    const sentinels = await Promise.all(
      [0, 1, 2].map(() =>
        start({
          configLines: [
            `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${master.port} 2`,
            `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
            `sentinel failover-timeout ${MASTER_NAME} 10000`,
          ],
          args: ['--sentinel'],
        }),
      ),
    );
    // A failover needs sentinels that know the replica and each other (hello messages, ~2 s).
    await waitFor(
      async () => {
        for (const sentinel of sentinels) {
          const [replicas, peers] = await Promise.all([
            command(sentinel.port, 'sentinel', ['replicas', MASTER_NAME], tls),
            command(sentinel.port, 'sentinel', ['sentinels', MASTER_NAME], tls),
          ]);
          if ((replicas as unknown[]).length !== 1 || (peers as unknown[]).length !== 2)
            return false;
        }
        return true;
      },
      SETTLE_TIMEOUT_MS,
      'sentinels that know the replica and each other',
    );
    const hosts = sentinels.map((sentinel) => `127.0.0.1:${sentinel.port}`).join(',');
    return {
      master,
      replica,
      sentinels,
      url: `${tls ? 'rediss' : 'redis'}+sentinel://${hosts}/${MASTER_NAME}`,
      async masterPort() {
        const sentinel = sentinels[0] as PrivateRedis;
        const address = await command(
          sentinel.port,
          'sentinel',
          ['get-master-addr-by-name', MASTER_NAME],
          tls,
        );
        return Number((address as string[])[1]);
      },
      destroy,
    };
  } catch (error) {
    await destroy();
    throw error;
  }
}

/**
 * Three masters with one replica each, made a cluster by `redis-cli --cluster create`. With
 * `tls`, every node speaks TLS only, to clients and on the cluster bus.
 */
export interface RedisClusterSet {
  nodes: PrivateRedis[];
  /** redis+cluster://… (rediss+cluster with TLS), naming two of the nodes. */
  url: string;
  /** The port of the master that serves `key`'s slot now, as a surviving node reports it. */
  masterPortForKey(key: string, askPort: number): Promise<number>;
  /** Every node still running agrees that the cluster is ok. */
  isHealthy(): Promise<boolean>;
  /**
   * SIGKILLs the master that serves the queue's slot (every key under the default prefix's hash
   * tag) and waits until a replica serves it and the cluster is ok again.
   */
  killQueueMaster(): Promise<void>;
  destroy(): Promise<void>;
}

export async function startRedisCluster(
  options: { tls?: TlsFiles } = {},
): Promise<RedisClusterSet> {
  const { tls } = options;
  const nodes = await Promise.all(
    Array.from({ length: 6 }, () =>
      startPrivateRedis({
        tls,
        args: [
          ...['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
          // A master unanswered for a second is failed over by its replica.
          ...['--cluster-node-timeout', '1000'],
          ...(tls ? ['--tls-cluster', 'yes', '--tls-replication', 'yes'] : []),
        ],
      }),
    ),
  );
  const destroy = async () => {
    await Promise.all(nodes.map((node) => node.destroy()));
  };
  const running = () => nodes.filter((node) => node.child !== undefined);
  const cluster: RedisClusterSet = {
    nodes,
    url: `${tls ? 'rediss' : 'redis'}+cluster://127.0.0.1:${nodes[0]?.port},127.0.0.1:${nodes[1]?.port}`,
    async masterPortForKey(key, askPort) {
      const slot = Number(await command(askPort, 'cluster', ['keyslot', key], tls));
      const slots = (await command(askPort, 'cluster', ['slots'], tls)) as [
        number,
        number,
        [string, number],
      ][];
      const owner = slots.find(([from, to]) => slot >= from && slot <= to);
      if (!owner) throw new Error(`no node serves slot ${slot}`);
      return owner[2][1];
    },
    async isHealthy() {
      for (const node of running()) {
        const info = String(await command(node.port, 'cluster', ['info'], tls));
        if (!info.includes('cluster_state:ok')) return false;
      }
      return true;
    },
    async killQueueMaster() {
      const [first, second] = nodes as [PrivateRedis, PrivateRedis];
      const ownerPort = await cluster.masterPortForKey(QUEUE_SLOT_KEY, first.port);
      const survivor = ownerPort === first.port ? second : first;
      await nodes.find((node) => node.port === ownerPort)?.kill();
      await waitFor(
        async () =>
          (await cluster.masterPortForKey(QUEUE_SLOT_KEY, survivor.port)) !== ownerPort &&
          (await cluster.isHealthy()),
        SETTLE_TIMEOUT_MS,
        "a replica serving the queue's slot",
      );
    },
    destroy,
  };
  try {
    await run('redis-cli', [
      ...(tls ? ['--tls', '--cacert', tls.ca] : []),
      '--cluster',
      'create',
      ...nodes.map((node) => `127.0.0.1:${node.port}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ]);
    await waitFor(() => cluster.isHealthy(), SETTLE_TIMEOUT_MS, 'the cluster ok on every node');
    // A replica that has not synced with its master yet would refuse to take over from it.
    await waitFor(
      async () => {
        for (const node of nodes) {
          const role = await replicationField(node.port, 'role', tls);
          if (
            role === 'slave' &&
            (await replicationField(node.port, 'master_link_status', tls)) !== 'up'
          )
            return false;
        }
        return true;
      },
      SETTLE_TIMEOUT_MS,
      'every replica in sync with its master',
    );
    return cluster;
  } catch (error) {
    await destroy();
    throw error;
  }
}
