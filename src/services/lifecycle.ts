import { createServer, type Server } from 'node:http';
import type { Express } from 'express';
import type { Logger } from '../logger.ts';

export interface Stoppable {
  stop(): Promise<void>;
}

export function listen(app: Express, port: number, host = '0.0.0.0'): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(app);
    server.once('error', reject);
    server.listen(port, host, () => {
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
