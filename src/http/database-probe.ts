import pg from 'pg';

/**
 * The receiver's database health check: one small connection pool and `select 1`. The receiver
 * writes nothing to PostgreSQL, so it does without the ORM and the memory it takes.
 */
export function createDatabaseProbe(databaseUrl: string) {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
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
