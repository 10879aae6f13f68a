import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNpmScript } from '../support/cli.ts';
import { countRows, createTestDatabase, migrationNames } from '../support/database.ts';
import {
  type FakeClerkApi,
  fakeClerkEnv,
  generateUsers,
  startFakeClerkApi,
} from '../support/fake-clerk-api.ts';
import { useTestDatabase } from '../support/hooks.ts';
import { asNewMessage, newUsers, redelivery, shuffle, userCreated } from '../support/load.ts';
import { freePort, killAllChildren } from '../support/processes.ts';
import { uniqueQueueName } from '../support/queue.ts';
import { type PrivateRedis, startPrivateRedis } from '../support/redis-server.ts';
import { health, spawnService, spawnServices } from '../support/services.ts';
import { sendAllAcknowledged, waitUntilStored } from '../support/stack.ts';
import { type PgBouncer, startPgBouncer } from './support/postgres-servers.ts';

const POOL_SIZE = 5;
const DELIVERIES = 300;
const STORM_COPIES = 50;
const CLERK_USERS = 500;

/**
 * Everything but migrations through PgBouncer in transaction mode with a pool of 5, as through
 * Supabase's pooler: a server connection belongs to a client for one transaction only, so
 * nothing may rely on session state. Migrations take the direct URL.
 */
describe('through PgBouncer in transaction mode, a pool of 5', () => {
  const db = useTestDatabase({ migrate: false });
  let redis: PrivateRedis;
  let api: FakeClerkApi;
  let pooler: PgBouncer | undefined;
  let poolerPort: number;
  let pooledUrl: string;

  beforeAll(async () => {
    [redis, api, poolerPort] = await Promise.all([
      startPrivateRedis(),
      startFakeClerkApi(generateUsers(CLERK_USERS)),
      freePort(),
    ]);
    pooledUrl = `postgresql://postgres@127.0.0.1:${poolerPort}/${db.name}`;
  });

  afterAll(async () => {
    await killAllChildren();
    await Promise.all([pooler?.stop(), redis?.destroy(), api?.close()]);
  });

  it('migrates over MIGRATION_DATABASE_URL and never over DATABASE_URL', async () => {
    // The pooler does not even listen yet: a migration that used DATABASE_URL would fail.
    const migrated = await runNpmScript('migration:up', [], {
      DATABASE_URL: pooledUrl,
      MIGRATION_DATABASE_URL: db.url,
    });
    expect(migrated.code, migrated.output).toBe(0);
    expect(await countRows(db, 'mikro_orm_migrations')).toBe((await migrationNames()).length);
  });

  it('npm start migrates over MIGRATION_DATABASE_URL, then serves over DATABASE_URL', async () => {
    const direct = await createTestDatabase({ migrate: false });
    pooler = await startPgBouncer({ poolSize: POOL_SIZE, port: poolerPort });
    try {
      const started = await spawnService('start', {
        DATABASE_URL: pooledUrl,
        MIGRATION_DATABASE_URL: direct.url,
        REDIS_URL: redis.url,
        QUEUE_NAME: uniqueQueueName(),
        WORKER_METRICS_PORT: String(await freePort()),
      });
      expect((await health(started)).body).toMatchObject({ database: 'connected' });
      expect(await countRows(direct, 'mikro_orm_migrations')).toBe((await migrationNames()).length);
      await started.stop('SIGTERM');
    } finally {
      await direct.drop();
    }
  });

  it('stores deliveries, a duplicate storm and a backfill: exact rows, one preferences row each', async () => {
    const environment = {
      DATABASE_URL: pooledUrl,
      REDIS_URL: redis.url,
      QUEUE_NAME: uniqueQueueName(),
    };
    const [receiver, ...workers] = await spawnServices(
      ['receiver', 'worker', 'worker'],
      environment,
    );
    for (const service of [receiver, ...workers]) {
      expect((await health(service)).body).toMatchObject({ database: 'connected' });
    }

    const users = new Set<string>();
    const stormed = userCreated('user_pgbouncer_storm');
    users.add(stormed.clerkUserId);
    const deliveries = shuffle([
      ...newUsers(DELIVERIES, users),
      ...Array.from({ length: STORM_COPIES }, () => asNewMessage(stormed)),
      ...Array.from({ length: STORM_COPIES }, () => redelivery(stormed)),
    ]);
    const [, backfill] = await Promise.all([
      sendAllAcknowledged(receiver.url, deliveries, 32),
      runNpmScript('backfill', [], { ...fakeClerkEnv(api), DATABASE_URL: pooledUrl }),
    ]);
    expect(backfill.code, backfill.output).toBe(0);
    for (const user of api.users) users.add(user.id);

    await waitUntilStored(db, users, 60_000);

    // The commands that read and compare go through the pooler too.
    const [checked, reconciled] = await Promise.all([
      runNpmScript('db:check', [], { DATABASE_URL: pooledUrl }),
      runNpmScript('reconcile', [], { ...fakeClerkEnv(api), DATABASE_URL: pooledUrl }),
    ]);
    expect(checked.code, checked.output).toBe(0);
    expect(reconciled.code, reconciled.output).toBe(0);
  });
});
