import pg from 'pg';
import { postgresConnection } from '../database-url.ts';

/**
 * The receiver's database health check: one small connection pool and `select 1`. The receiver
 * writes nothing to PostgreSQL, so it does without the ORM and the memory it takes. It reads
 * the URL as the ORM does (sslmode included), so it reports connected only when the worker can be.
 */
export function createDatabaseProbe(databaseUrl: string) {
  const pool = new pg.Pool({
    ...postgresConnection(databaseUrl),
    max: 1,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 1_500,
  });
  // An idle connection that PostgreSQL drops must not crash the process; the next check reconnects.
  pool.on('error', () => undefined);
  return {
    async isReachable(): Promise<boolean> {
      const result = await pool.query('select 1 as ok');
      return result.rows[0]?.ok === 1;
    },
    close: () => pool.end(),
  };
}
