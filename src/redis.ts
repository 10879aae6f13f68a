import { randomUUID } from 'node:crypto';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.ts';
import { parseRedisUrl } from './redis-url.ts';

/** A single server, a master found through Sentinel, or a Redis Cluster. */
export type RedisConnection = Redis | Cluster;

/** How long the receiver waits on Redis before answering 503, well inside Svix's 15 s. */
export const PRODUCER_COMMAND_TIMEOUT_MS = 3_000;

/**
 * A connection that has answered nothing for this long while a command waits is dropped and
 * made again: one that vanished without a reset (a NAT or load balancer that forgot it, a
 * partition) would otherwise stay "ready" and time out every command until the kernel gives up
 * on it, after about 15 minutes. The producer sends no blocking command.
 */
const PRODUCER_SOCKET_TIMEOUT_MS = 5_000;
/** The worker's: longer than BullMQ's longest blocking read (10 s). */
const WORKER_SOCKET_TIMEOUT_MS = 15_000;

/**
 * A connection for code that answers an HTTP request. Callers check `isReady` first and answer
 * 503 at once while Redis is unreachable; commands time out when Redis hangs. The offline
 * queue stays on (and per-request retries unlimited) only so that BullMQ's own start-up
 * commands wait for Redis instead of failing for good when the receiver starts before Redis.
 */
export function createProducerConnection(url: string, log: Logger): RedisConnection {
  return createConnection(url, log, {
    maxRetriesPerRequest: null,
    connectTimeout: 2_000,
    commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS,
    socketTimeout: PRODUCER_SOCKET_TIMEOUT_MS,
  });
}

export function isReady(connection: RedisConnection): boolean {
  return connection.status === 'ready';
}

/** Resolves when the connection is ready or after `ms`, whichever comes first. */
export function waitForRedis(connection: RedisConnection, ms: number): Promise<void> {
  if (isReady(connection)) return Promise.resolve();
  return new Promise((resolve) => {
    // The listener goes with the timer: a health check every few seconds through a long
    // outage must not pile up listeners.
    const done = () => {
      clearTimeout(timer);
      connection.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    connection.once('ready', done);
  });
}

/** How long a health check waits for a connection still being made (at start, or after a drop). */
const HEALTH_READY_WAIT_MS = 1_000;

/** The health check's view of Redis: the connection is ready, or gets ready soon, and answers PING. */
export async function answersPing(connection: RedisConnection): Promise<boolean> {
  await waitForRedis(connection, HEALTH_READY_WAIT_MS);
  return isReady(connection) && (await connection.ping()) === 'PONG';
}

/**
 * An 'error' listener for a BullMQ queue or worker on `connection`. While Redis is unreachable,
 * BullMQ passes on the failure of every reconnect attempt of each of its connections, every
 * 2 s for as long as the outage lasts; the connection reports the outage once, and its
 * recovery, so those go to debug. Any other error is logged as it comes.
 */
export function reportBullErrors(
  connection: RedisConnection,
  log: Logger,
  message: string,
): (error: Error) => void {
  return (error) => {
    if (isReady(connection)) log.error({ err: error }, message);
    else log.debug({ err: error }, message);
  };
}

/**
 * Eviction policies under which a Redis that runs out of memory drops any key: a queued job's
 * among them, after the receiver answered 202 for it. (`volatile-*` policies drop only keys
 * with a time to live, such as a job's lock; a job whose lock goes is processed again, which is
 * harmless. `noeviction` refuses the write, and the receiver answers 503.)
 */
const EVICTS_ANY_KEY = /^allkeys-/;

/**
 * How often the settings and the marker are read again: `CONFIG SET` changes a setting without a
 * reconnection, and a flush or a failover to an empty replica empties Redis without one.
 */
export const DURABILITY_CHECK_INTERVAL_MS = 5_000;

/** What the receiver needs to know of Redis's settings before it acknowledges a delivery. */
export interface RedisSettings {
  /** The `maxmemory-policy` of a server that may evict queued jobs; undefined when none does. */
  evictingPolicy: string | undefined;
  /**
   * Whether every server writes an append-only file. Without one, a restarted Redis comes back
   * with what its last snapshot held, or empty: the deliveries acknowledged since are gone.
   * Undefined until first read.
   */
  appendOnly: boolean | undefined;
}

export interface RedisDurabilityWatch {
  /** The settings as last read; after the connection gets ready, waits for its read. */
  settings(): Promise<RedisSettings>;
  /** The same, without waiting: for a metrics scrape. */
  lastSettings(): RedisSettings;
  /** How many times this process found that Redis had lost its data. */
  dataLosses(): number;
  stop(): void;
}

/**
 * Watches what decides whether Redis keeps what the receiver acknowledged, whenever the
 * connection gets ready (at start, and after a reconnection or a failover to another server) and
 * every DURABILITY_CHECK_INTERVAL_MS while it stays ready:
 * - its `maxmemory-policy` and whether it writes an append-only file (from every master of a
 *   cluster): an error when the policy turns to one that may evict queued jobs, a warning when
 *   Redis writes no append-only file, and a warning when either ends;
 * - `markerKey`, a key with a random value that is written once when missing and never
 *   expires, in the queue's own slot: when it is gone or holds another value, Redis lost its
 *   data (a restart without an append-only file, a flush, a failover to an empty replica), and
 *   with it any delivery acknowledged before. That is logged as an error, once each time.
 * A read that is not answered (an outage, INFO not allowed) leaves the last one standing.
 */
export function watchRedisDurability(
  connection: RedisConnection,
  log: Logger,
  markerKey: string,
): RedisDurabilityWatch {
  let settings: RedisSettings = { evictingPolicy: undefined, appendOnly: undefined };
  let marker: string | undefined;
  let losses = 0;
  /** The read made when the connection got ready, until it ends: deliveries wait for it. */
  let afterReady: Promise<void> | undefined;
  const checkSettings = async () => {
    const found = await readSettings(connection).catch(() => settings);
    const policy = found.evictingPolicy;
    if (policy && policy !== settings.evictingPolicy) {
      log.error(
        { maxmemoryPolicy: policy },
        `Redis may evict queued deliveries (maxmemory-policy ${policy}); refusing deliveries until it is noeviction`,
      );
    } else if (!policy && settings.evictingPolicy) {
      log.warn('Redis no longer evicts queued deliveries; accepting deliveries again');
    }
    if (found.appendOnly === false && settings.appendOnly !== false) {
      log.warn(
        'Redis writes no append-only file (appendonly no): if it restarts, the deliveries acknowledged since its last snapshot are lost; set appendonly yes',
      );
    } else if (found.appendOnly && settings.appendOnly === false) {
      log.warn('Redis writes an append-only file again');
    }
    settings = found;
  };
  const checkMarker = async () => {
    // One read when the marker is there, as it nearly always is; written only when it is not.
    let found = await connection.get(markerKey);
    if (found === null) {
      const mine = randomUUID();
      // Another receiver may write it first: then it is read at the next check.
      if ((await connection.set(markerKey, mine, 'NX')) !== 'OK') return;
      found = mine;
    }
    if (marker !== undefined && found !== marker) {
      losses++;
      log.error(
        { markerKey },
        'Redis lost its data (a restart without an append-only file, a flush, or a failover to an empty replica): deliveries acknowledged before it may be lost; run npm run reconcile -- --apply',
      );
    }
    marker = found;
  };
  const check = async () => {
    if (!isReady(connection)) return;
    await Promise.all([checkSettings(), checkMarker().catch(() => undefined)]);
  };
  const onReady = () => {
    const checked: Promise<void> = check().then(() => {
      if (afterReady === checked) afterReady = undefined;
    });
    afterReady = checked;
  };
  connection.on('ready', onReady);
  const timer = setInterval(check, DURABILITY_CHECK_INTERVAL_MS).unref();
  onReady();
  return {
    async settings() {
      await afterReady;
      return settings;
    },
    lastSettings: () => settings,
    dataLosses: () => losses,
    stop() {
      clearInterval(timer);
      connection.off('ready', onReady);
    },
  };
}

async function readSettings(connection: RedisConnection): Promise<RedisSettings> {
  const servers = connection instanceof Cluster ? connection.nodes('master') : [connection];
  const settings: RedisSettings = { evictingPolicy: undefined, appendOnly: true };
  for (const server of servers) {
    // INFO with no section (memory and persistence are among its defaults), as Redis 6 knows it.
    const info = await server.info();
    const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
    if (policy && EVICTS_ANY_KEY.test(policy)) settings.evictingPolicy ??= policy;
    if (/^aof_enabled:0/m.test(info)) settings.appendOnly = false;
  }
  return settings;
}

/** A connection for the worker: it waits out a Redis outage instead of failing commands. */
export function createWorkerConnection(url: string, log: Logger): RedisConnection {
  return createConnection(url, log, {
    maxRetriesPerRequest: null,
    connectTimeout: 5_000,
    socketTimeout: WORKER_SOCKET_TIMEOUT_MS,
  });
}

/** Reconnects soon after a drop, then every 2 s: a failover is found within 2 s of finishing. */
const reconnectDelay = (attempt: number) => Math.min(attempt * 200, 2_000);

/**
 * A server that answers a write with READONLY is a replica: after a failover that demoted the
 * master this connection reached, or moved the name it was made to (a managed Redis's primary
 * endpoint), the connection still reaches the old one, and would for good. Reconnecting finds
 * the master again, and the command is sent again there (2).
 */
const reconnectOnReadOnly = (error: Error) => (error.message.startsWith('READONLY') ? 2 : false);

/**
 * The one place a Redis client is made, for every process and command: the client REDIS_URL
 * calls for (see parseRedisUrl), with the caller's options on every server connection. TLS
 * certificates are checked against Node's CAs, NODE_EXTRA_CA_CERTS included.
 */
function createConnection(url: string, log: Logger, options: RedisOptions): RedisConnection {
  const target = parseRedisUrl(url);
  // For every connection to a server; a cluster reconnects its nodes by its own strategy.
  const nodeOptions: RedisOptions = { ...options, reconnectOnError: reconnectOnReadOnly };
  const serverOptions: RedisOptions = { ...nodeOptions, retryStrategy: reconnectDelay };
  let connection: RedisConnection;
  if (target.mode === 'standalone') {
    connection = new Redis(target.url, serverOptions);
  } else {
    const { username, password } = target;
    const tls = target.tls ? { tls: {} } : {};
    if (target.mode === 'sentinel') {
      connection = new Redis({
        ...serverOptions,
        ...tls,
        username,
        password,
        db: target.db,
        sentinels: target.sentinels,
        name: target.masterName,
        // rediss+sentinel: TLS to the sentinels and to the master alike.
        ...(target.tls ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
        sentinelRetryStrategy: reconnectDelay,
      });
    } else {
      connection = new Cluster(target.nodes, {
        redisOptions: { ...nodeOptions, ...tls, username, password },
        clusterRetryStrategy: reconnectDelay,
        // While a replica takes over a dead master's slots, commands wait for the new map
        // instead of failing: the producer's command timeout still bounds each request.
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
        slotsRefreshTimeout: 2_000,
      });
    }
  }
  let reported = false;
  connection.on('error', (error) => {
    if (!reported) log.warn({ err: error }, 'redis connection error');
    reported = true;
  });
  connection.on('ready', () => {
    // At the error's level: whoever sees an outage begin sees it end.
    if (reported) log.warn('redis connection restored');
    reported = false;
  });
  return connection;
}
