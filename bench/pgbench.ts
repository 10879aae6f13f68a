import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { countRows, SERVER_URL } from '../test/support/database.ts';
import { freshDatabase, Scope } from './fixtures.ts';

const SCRIPT = fileURLToPath(new URL('./pgbench/user-upsert.sql', import.meta.url));
export const PGBENCH_CLIENTS = 16;
const PGBENCH_THREADS = 2;

export interface PgbenchResult {
  /** Transactions per second, each one event's user and preferences. */
  tps: number;
  transactions: number;
  rows: number;
  clients: number;
  seconds: number;
}

/**
 * PostgreSQL on its own, one transaction per event (bench/pgbench/user-upsert.sql: our own SQL
 * for the worker's writes, not a copy of what MikroORM sends, and the faster of the two), 16
 * clients, against a fresh migrated database: what the worker's writes cost without BullMQ,
 * Node or batching.
 */
export function measurePgbench(seconds: number): Promise<PgbenchResult> {
  return Scope.run(async (scope) => {
    const database = await freshDatabase(scope);
    const server = new URL(SERVER_URL);
    const { stdout } = await promisify(execFile)(
      process.env.PGBENCH ?? 'pgbench',
      [
        '--no-vacuum',
        `--client=${PGBENCH_CLIENTS}`,
        `--jobs=${PGBENCH_THREADS}`,
        `--time=${seconds}`,
        `--file=${SCRIPT}`,
        `--host=${server.hostname}`,
        `--port=${server.port || '5432'}`,
        `--username=${decodeURIComponent(server.username) || 'postgres'}`,
        database.name,
      ],
      { env: { ...process.env, PGPASSWORD: decodeURIComponent(server.password) } },
    );
    const tps = /^tps = ([\d.]+) \(without initial connection time\)$/m.exec(stdout)?.[1];
    const transactions = /^number of transactions actually processed: (\d+)/m.exec(stdout)?.[1];
    if (!tps || !transactions) throw new Error(`cannot read pgbench's output:\n${stdout}`);
    return {
      tps: Number(tps),
      transactions: Number(transactions),
      rows: await countRows(database, 'users'),
      clients: PGBENCH_CLIENTS,
      seconds,
    };
  });
}
