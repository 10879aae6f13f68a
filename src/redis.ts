import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.ts';
import { parseRedisUrl } from './redis-url.ts';

/** A single server, a master found through Sentinel, or a Redis Cluster. */
export type RedisConnection = Redis | Cluster;

/** How long the receiver waits on Redis before answering 503, well inside Svix's 15 s. */
export const PRODUCER_COMMAND_TIMEOUT_MS = 3_000;

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

/** A connection for the worker: it waits out a Redis outage instead of failing commands. */
export function createWorkerConnection(url: string, log: Logger): RedisConnection {
  return createConnection(url, log, { maxRetriesPerRequest: null, connectTimeout: 5_000 });
}

/** Reconnects soon after a drop, then every 2 s: a failover is found within 2 s of finishing. */
const reconnectDelay = (attempt: number) => Math.min(attempt * 200, 2_000);

/**
 * The one place a Redis client is made, for every process and command: the client REDIS_URL
 * calls for (see parseRedisUrl), with the caller's options on every server connection. TLS
 * certificates are checked against Node's CAs, NODE_EXTRA_CA_CERTS included.
 */
function createConnection(url: string, log: Logger, options: RedisOptions): RedisConnection {
  const target = parseRedisUrl(url);
  const serverOptions: RedisOptions = { ...options, retryStrategy: reconnectDelay };
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
        redisOptions: { ...options, ...tls, username, password },
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
