import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { EntityManager } from '@mikro-orm/postgresql';
import { MikroORM } from '@mikro-orm/postgresql';
import { createLogger } from '../../src/logger.ts';
import {
  CREATE_MISSING_DATABASE,
  initORM,
  MIGRATIONS_PATH,
  migrateUp,
  ormOptions,
  type Services,
} from '../../src/orm.ts';
import { PROJECT_ROOT } from './cli.ts';

export const SERVER_URL =
  process.env.TEST_DATABASE_SERVER_URL ?? 'postgresql://postgres@127.0.0.1:5432';

export interface TestDatabase extends Services {
  url: string;
  name: string;
  /** Closes the ORM and drops the database. */
  drop(): Promise<void>;
}

/** A new, empty database of the suite's own; migrated unless asked not to be. */
export async function createTestDatabase(
  options: { migrate?: boolean } = {},
): Promise<TestDatabase> {
  const name = `clerk_sync_test_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const url = `${SERVER_URL}/${name}`;
  const services = await initORM(url, createLogger({ level: 'silent' }), CREATE_MISSING_DATABASE);
  if (options.migrate ?? true) await migrateUp(services.orm);
  return {
    ...services,
    url,
    name,
    async drop() {
      await services.orm.close();
      await dropDatabase(name);
    },
  };
}

export async function dropDatabase(name: string): Promise<void> {
  const admin = new MikroORM(ormOptions(`${SERVER_URL}/postgres`));
  try {
    await admin.em.getConnection().execute(`drop database if exists "${name}" with (force)`);
  } finally {
    await admin.close();
  }
}

/**
 * Makes every session opened from now on read-only, as on a standby or a read replica; the
 * database's own connections, opened before, still write.
 */
export async function makeReadOnly(db: TestDatabase): Promise<void> {
  await sql(db, `alter database "${db.name}" set default_transaction_read_only = on`);
}

/** Runs plain SQL for assertions about what is really stored. */
export async function sql<T = Record<string, unknown>>(
  services: Services,
  query: string,
  params: unknown[] = [],
): Promise<T[]> {
  return services.em.getConnection().execute<T[]>(query, params);
}

export async function countRows(
  services: Services,
  table: string,
  where = 'true',
  params: unknown[] = [],
): Promise<number> {
  const [row] = await sql<{ count: string }>(
    services,
    `select count(*)::text as count from "${table}" where ${where}`,
    params,
  );
  return Number(row?.count);
}

/**
 * Opens as many pool connections as `count` at once. Without it, the first of many concurrent
 * transactions takes the one idle connection and commits while the others still wait for
 * theirs, and nothing really races.
 */
export async function openPoolConnections(services: Services, count = 10): Promise<void> {
  await Promise.all(Array.from({ length: count }, () => sql(services, 'select pg_sleep(0.05)')));
}

/**
 * Holds a Clerk user's advisory lock, as a worker or a command takes it, in a transaction of
 * its own until released; `inside` runs in that transaction once the lock is held, and what it
 * writes commits on release.
 */
export function holdUserLock(
  services: Services,
  clerkUserId: string,
  inside: (tx: EntityManager) => Promise<unknown> = async () => undefined,
): Promise<{ release(): Promise<void> }> {
  return holdTransaction(services, async (tx) => {
    await tx.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [clerkUserId]);
    await inside(tx);
  });
}

/** Runs `inside` in a transaction that stays open, with whatever it locked, until released. */
export async function holdTransaction(
  services: Services,
  inside: (tx: EntityManager) => Promise<unknown>,
): Promise<{ release(): Promise<void> }> {
  const { promise: held, resolve: release } = Promise.withResolvers<void>();
  const { promise: started, resolve: isStarted, reject: failed } = Promise.withResolvers<void>();
  const transaction = services.em.fork().transactional(async (tx) => {
    await inside(tx);
    await tx.flush();
    isStarted();
    await held;
  });
  transaction.catch(failed);
  await started;
  return {
    release: async () => {
      release();
      await transaction;
    },
  };
}

/** The project's migrations, by name, oldest first. */
export async function migrationNames(): Promise<string[]> {
  const files = await readdir(join(PROJECT_ROOT, MIGRATIONS_PATH));
  return files
    .filter((file) => /^Migration\d+.*\.ts$/.test(file))
    .map((file) => file.replace(/\.ts$/, ''))
    .sort();
}
