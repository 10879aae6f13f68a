import {
  DefaultLogger,
  type LogContext,
  type LoggerNamespace,
  type LoggerOptions,
} from '@mikro-orm/core';
import { type Migration, Migrator } from '@mikro-orm/migrations';
import { defineConfig, type EntityManager, MikroORM, type Options } from '@mikro-orm/postgresql';
import type pg from 'pg';
import type { Config } from './config.ts';
import { postgresConnection } from './database-url.ts';
import { entities } from './entities/index.ts';
import { DatabaseUnavailableError } from './errors.ts';
import type { Logger } from './logger.ts';
import { lockAndReadClerkUsers } from './users/lock-and-read.ts';

export const MIGRATIONS_PATH = 'migrations';

/** A pooled connection is replaced after this long, busy or not (see ormOptions). */
export const MAX_CONNECTION_LIFETIME_S = 30;

/**
 * The MikroORM options shared by the application, the CLI and the tests. The server, the
 * credentials and TLS come from postgresConnection(), as for every other connection: MikroORM
 * reads only host, credentials and database from a clientUrl and would drop sslmode.
 */
export function ormOptions(databaseUrl: string, log?: Logger, overrides: Partial<Options> = {}) {
  const { host, port, user, password, database, ssl } = postgresConnection(databaseUrl);
  return defineConfig({
    clientUrl: databaseUrl,
    host,
    port,
    user,
    password,
    dbName: database,
    entities,
    routines: [lockAndReadClerkUsers],
    extensions: [Migrator],
    migrations: {
      path: MIGRATIONS_PATH,
      pathTs: MIGRATIONS_PATH,
      tableName: 'mikro_orm_migrations',
      transactional: true,
      allOrNothing: true,
      emit: 'ts',
      snapshot: false,
    },
    // Only the migration connection creates a missing database (CREATE_MISSING_DATABASE): a
    // service or command pointed at a mistyped name must fail, not fill an empty database.
    ensureDatabase: false,
    pool: { min: 0, max: 10, idleTimeoutMillis: 30_000 },
    driverOptions: {
      connectionTimeoutMillis: 5_000,
      // After a failover, a connection opened before it may reach the old primary, now a
      // standby that refuses every write, and a busy pool never lets it go idle. Each new
      // connection looks the host up again.
      maxLifetimeSeconds: MAX_CONNECTION_LIFETIME_S,
      ssl,
      onPoolCreated: releaseBrokenConnections,
    },
    ...(log ? { loggerFactory: (options: LoggerOptions) => new PinoOrmLogger(options, log) } : {}),
    ...overrides,
  });
}

/** For the migration connection: the database is created when it does not exist yet. */
export const CREATE_MISSING_DATABASE = { ensureDatabase: true } satisfies Partial<Options>;

/** Set to `yes` to let a migration's down() drop tables that hold rows. */
export const DOWN_DROPS_ROWS = 'MIGRATION_DOWN_DROPS_ROWS';

/**
 * For a down() that drops tables or columns: fails, changing nothing, while one of `tables`
 * holds a row, unless MIGRATION_DOWN_DROPS_ROWS=yes. Reverting a running deployment's schema
 * would drop its users, or its tombstones, after which a late user.created brings a deleted
 * user back.
 */
export async function refuseToDropRows(migration: Migration, tables: string[]): Promise<void> {
  if (process.env[DOWN_DROPS_ROWS] === 'yes') return;
  const held: string[] = [];
  for (const table of tables) {
    const [row] = await migration.execute(`select exists (select from "${table}") as held`);
    if (row?.held) held.push(table);
  }
  if (held.length === 0) return;
  throw new Error(
    `reverting ${migration.constructor.name} would drop the rows of ${held.join(', ')}; nothing was changed (run it with ${DOWN_DROPS_ROWS}=yes to drop them)`,
  );
}

/**
 * Kysely, under MikroORM, gives a transaction's connection back to the pool only once its commit
 * or rollback succeeds, which neither can on a connection the server has closed (a killed
 * session, an idle-in-transaction timeout, a restart). The pool would count it as in use for
 * good, and after ten of them every transaction would wait for a connection forever. So a
 * connection that fails while it is checked out goes back to the pool with its error, which
 * discards it.
 */
function releaseBrokenConnections(pool: pg.Pool): void {
  const checkedOut = new Set<pg.PoolClient>();
  pool.on('acquire', (client) => checkedOut.add(client));
  pool.on('release', (_error, client) => checkedOut.delete(client));
  pool.on('connect', (client) => {
    // The pool hands out the very client it connected, as a PoolClient.
    const pooled = client as pg.PoolClient;
    client.on('error', (error) => {
      if (checkedOut.has(pooled)) pooled.release(error);
    });
  });
}

export interface Services {
  orm: MikroORM;
  em: EntityManager;
}

/**
 * Opens the ORM and its connection pool (with CREATE_MISSING_DATABASE, creating the database
 * first when it does not exist yet). Fails with a DatabaseUnavailableError that says which
 * server or database could not be reached and why.
 */
export async function initORM(
  databaseUrl: string,
  log?: Logger,
  overrides: Partial<Options> = {},
  variable: Config['migrationDatabaseUrlVariable'] = 'DATABASE_URL',
): Promise<Services> {
  const orm = new MikroORM(ormOptions(databaseUrl, log, overrides));
  try {
    await orm.connect();
    // connect() opens no connection of its own: one query shows the database is there.
    const check = await orm.checkConnection();
    if (!check.ok) throw check.error ?? new Error(check.reason);
  } catch (error) {
    await orm.close(true).catch(() => undefined);
    // pg's first line is the reason, TLS refusals included ("self-signed certificate in
    // certificate chain", "The server does not support SSL connections").
    const url = new URL(databaseUrl);
    const target = `${url.hostname}:${url.port || 5432}${url.pathname}`;
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new DatabaseUnavailableError(`${variable}: cannot connect to ${target}: ${reason}`);
  }
  return { orm, em: orm.em };
}

/** initORM over the migration connection, creating the database when it does not exist yet. */
export function initMigrationORM(config: Config, log?: Logger): Promise<Services> {
  const url = config.migrationDatabaseUrl;
  return initORM(url, log, CREATE_MISSING_DATABASE, config.migrationDatabaseUrlVariable);
}

/**
 * The ORM without a connection yet, for the receiver: it must start, and answer 503 on its
 * health check, while PostgreSQL is down. The pool connects on first use.
 */
export function createORM(databaseUrl: string, log?: Logger): Services {
  const orm = new MikroORM(ormOptions(databaseUrl, log));
  return { orm, em: orm.em };
}

/** Whether PostgreSQL answers now; connects first when the ORM has not yet. */
export async function isDatabaseReachable(orm: MikroORM): Promise<boolean> {
  if (!(await orm.isConnected())) await orm.connect();
  return (await orm.checkConnection()).ok;
}

/** Runs pending migrations; returns the names of those applied. */
export async function migrateUp(orm: MikroORM): Promise<string[]> {
  const applied = await orm.migrator.up();
  return applied.map((migration) => migration.name);
}

/** Routes MikroORM's own messages into pino: queries at debug, pool errors as warnings. */
class PinoOrmLogger extends DefaultLogger {
  readonly #log: Logger;

  constructor(options: LoggerOptions, log: Logger) {
    super(options);
    this.#log = log.child({ module: 'mikro-orm' });
  }

  override log(namespace: string, message: string, context?: LogContext): void {
    if (this.isEnabled(namespace as LoggerNamespace, context))
      this.#log.debug({ namespace }, message);
  }

  override warn(namespace: string, message: string): void {
    this.#log.warn({ namespace }, message);
  }

  override error(namespace: string, message: string): void {
    this.#log.error({ namespace }, message);
  }

  // Overridden so that the SQL itself never reaches the log, only its timing.
  override logQuery(context: LogContext): void {
    if (this.isEnabled(context.namespace ?? 'query', context)) {
      this.#log.debug({ took: context.took }, 'query');
    }
  }
}
