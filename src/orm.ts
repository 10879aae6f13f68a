import type {
  LogContext,
  LoggerNamespace,
  LoggerOptions,
  Logger as OrmLogger,
} from '@mikro-orm/core';
import { Migrator } from '@mikro-orm/migrations';
import { defineConfig, type EntityManager, MikroORM, type Options } from '@mikro-orm/postgresql';
import type pg from 'pg';
import { postgresConnection } from './database-url.ts';
import { entities } from './entities/index.ts';
import { DatabaseUnavailableError } from './errors.ts';
import type { Logger } from './logger.ts';
import { lockAndReadClerkUsers } from './users/lock-and-read.ts';

export const MIGRATIONS_PATH = 'migrations';

/** The environment variable a connection's URL came from, for error messages. */
export type DatabaseUrlVariable = 'DATABASE_URL' | 'MIGRATION_DATABASE_URL';

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
      ssl,
      onPoolCreated: releaseBrokenConnections,
    },
    ...(log ? { loggerFactory: (options: LoggerOptions) => new PinoOrmLogger(options, log) } : {}),
    ...overrides,
  });
}

/** For the migration connection: the database is created when it does not exist yet. */
export const CREATE_MISSING_DATABASE = { ensureDatabase: true } satisfies Partial<Options>;

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
  variable: DatabaseUrlVariable = 'DATABASE_URL',
): Promise<Services> {
  const orm = new MikroORM(ormOptions(databaseUrl, log, overrides));
  try {
    await orm.connect();
    // connect() opens no connection of its own: one query shows the database is there.
    const check = await orm.checkConnection();
    if (!check.ok) throw check.error ?? new Error(check.reason);
  } catch (error) {
    await orm.close(true).catch(() => undefined);
    throw new DatabaseUnavailableError(describeConnectionFailure(databaseUrl, error, variable));
  }
  return { orm, em: orm.em };
}

/**
 * One line that names the variable, the server and pg's reason: a refused TLS certificate
 * ("self-signed certificate in certificate chain") or a server without TLS when sslmode asks
 * for it ("The server does not support SSL connections") reads like any other failure.
 */
export function describeConnectionFailure(
  databaseUrl: string,
  error: unknown,
  variable: DatabaseUrlVariable = 'DATABASE_URL',
): string {
  const url = new URL(databaseUrl);
  const target = `${url.hostname}:${url.port || 5432}${url.pathname}`;
  const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return `${variable}: cannot connect to ${target}: ${reason}`;
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
class PinoOrmLogger implements OrmLogger {
  #debugMode: boolean | LoggerNamespace[];
  readonly #log: Logger;

  constructor(options: LoggerOptions, log: Logger) {
    this.#debugMode = options.debugMode ?? false;
    this.#log = log.child({ module: 'mikro-orm' });
  }

  isEnabled(namespace: LoggerNamespace, context?: LogContext): boolean {
    if (context?.enabled !== undefined) return context.enabled;
    const debugMode = context?.debugMode ?? this.#debugMode;
    return Array.isArray(debugMode) ? debugMode.includes(namespace) : debugMode;
  }

  setDebugMode(debugMode: boolean | LoggerNamespace[]): void {
    this.#debugMode = debugMode;
  }

  log(namespace: LoggerNamespace | (string & {}), message: string, context?: LogContext): void {
    if (this.isEnabled(namespace as LoggerNamespace, context))
      this.#log.debug({ namespace }, message);
  }

  warn(namespace: LoggerNamespace | (string & {}), message: string): void {
    this.#log.warn({ namespace }, message);
  }

  error(namespace: LoggerNamespace | (string & {}), message: string): void {
    this.#log.error({ namespace }, message);
  }

  logQuery(context: LogContext): void {
    if (this.isEnabled(context.namespace ?? 'query', context)) {
      this.#log.debug({ took: context.took }, 'query');
    }
  }
}
