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
export async function waitForRedis(connection: Redis, ms: number): Promise<void> {
  if (isReady(connection)) return;
  let timer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    connection.once('ready', resolve);
  });
  clearTimeout(timer);
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
