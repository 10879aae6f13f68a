import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './logger.ts';

/** How long the receiver waits on Redis before answering 503, well inside Svix's 15 s. */
export const PRODUCER_COMMAND_TIMEOUT_MS = 3_000;

/**
 * A connection for code that answers an HTTP request. Callers check `isReady` first and answer
 * 503 at once while Redis is unreachable; commands time out when Redis hangs. The offline
 * queue stays on (and per-request retries unlimited) only so that BullMQ's own start-up
 * commands wait for Redis instead of failing for good when the receiver starts before Redis.
 */
export function createProducerConnection(url: string, log: Logger): Redis {
  return createConnection(url, log, {
    maxRetriesPerRequest: null,
    connectTimeout: 2_000,
    commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS,
  });
}

export function isReady(connection: Redis): boolean {
  return connection.status === 'ready';
}

/** Resolves when the connection is ready or after `ms`, whichever comes first. */
export function waitForRedis(connection: Redis, ms: number): Promise<void> {
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
export async function answersPing(connection: Redis): Promise<boolean> {
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
  connection: Redis,
  log: Logger,
  message: string,
): (error: Error) => void {
  return (error) => {
    if (isReady(connection)) log.error({ err: error }, message);
    else log.debug({ err: error }, message);
  };
}

/** A connection for the worker: it waits out a Redis outage instead of failing commands. */
export function createWorkerConnection(url: string, log: Logger): Redis {
  return createConnection(url, log, { maxRetriesPerRequest: null, connectTimeout: 5_000 });
}

function createConnection(url: string, log: Logger, options: RedisOptions): Redis {
  const connection = new Redis(url, {
    ...options,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  let reported = false;
  connection.on('error', (error) => {
    if (!reported) log.warn({ err: error }, 'redis connection error');
    reported = true;
  });
  connection.on('ready', () => {
    if (reported) log.info('redis connection restored');
    reported = false;
  });
  return connection;
}
