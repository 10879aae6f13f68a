import { createServer, type Server } from 'node:http';
import type { Express } from 'express';
import { type Config, DEFAULT_KEEP_ALIVE_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS } from '../config.ts';
import type { Logger } from '../logger.ts';

export interface Stoppable {
  stop(): Promise<void>;
}

/** Timeouts that keep a slow or stalled client from holding a connection open. */
export const HEADERS_TIMEOUT_MS = 5_000;
export const REQUEST_TIMEOUT_MS = 10_000;
/**
 * Node enforces the two timeouts above only when it sweeps its connections, every 30 s by
 * default: a client sending one header byte every 500 ms kept its connection for 20 s against a
 * 5 s header timeout. Sweeping this often closes it within a quarter of a second of the timeout.
 */
const CONNECTIONS_CHECKING_INTERVAL_MS = 250;

export type ListenOptions = Partial<Pick<Config, 'maxConnections' | 'keepAliveTimeoutMs'>>;

/** An HTTP server for `app`, listening, with the timeouts and connection cap every one of ours has. */
export function listen(app: Express, port: number, options: ListenOptions = {}): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(
      {
        headersTimeout: HEADERS_TIMEOUT_MS,
        requestTimeout: REQUEST_TIMEOUT_MS,
        keepAliveTimeout: options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
        connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
      },
      app,
    );
    server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    server.once('error', reject);
    server.listen(port, '0.0.0.0', () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

const CLOSE_GRACE_MS = 5_000;

/**
 * Stops accepting connections and waits for requests in flight; idle keep-alive connections
 * close at once, and a client still sending after CLOSE_GRACE_MS is cut off.
 */
export async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
  await closed;
  clearTimeout(timer);
}

/** Stops everything once on SIGTERM or SIGINT, then exits 0 (1 if stopping failed). */
export function stopOnSignals(log: Logger, ...parts: Stoppable[]): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    try {
      for (const part of parts) await part.stop();
      log.info('stopped');
      process.exit(0);
    } catch (error) {
      log.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
