import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initORM, type Services } from '../../src/orm.ts';
import { type CommandResult, runNpmScript } from '../support/cli.ts';
import { newUsers } from '../support/load.ts';
import { killAllChildren } from '../support/processes.ts';
import { uniqueQueueName } from '../support/queue.ts';
import { type PrivateRedis, startPrivateRedis } from '../support/redis-server.ts';
import { health, spawnServices } from '../support/services.ts';
import { sendAllAcknowledged, waitUntilStored } from '../support/stack.ts';
import { useCertificates } from './support/certificates.ts';
import { initPrivatePostgres, type PrivatePostgres } from './support/postgres-servers.ts';

const DATABASE = 'clerk_sync_tls';

/** The one line a command prints on stderr when it cannot connect, e.g. for a refused certificate. */
function stderrLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.trim() !== '');
}

/**
 * PostgreSQL over TLS, on a cluster of the test's own with a certificate from a CA made here:
 * sslmode and sslrootcert have libpq's meaning for every connection, and a connection that
 * cannot be what the URL asks for is one clear line, never a silent plaintext one.
 */
describe('PostgreSQL with TLS', () => {
  const certs = useCertificates();
  let postgres: PrivatePostgres;
  let redis: PrivateRedis;
  let verifyFullUrl: string;

  beforeAll(async () => {
    [postgres, redis] = await Promise.all([initPrivatePostgres(), startPrivateRedis()]);
    verifyFullUrl = postgres.url(DATABASE, `sslmode=verify-full&sslrootcert=${certs.ca}`);
  });

  afterAll(async () => {
    await killAllChildren();
    await Promise.all([postgres?.destroy(), redis?.destroy()]);
  });

  it('refuses sslmode=require against a server without TLS: one line, no connection made', async () => {
    // A server that would take plaintext: before sslmode was honoured, db:check passed on it.
    await postgres.start({ hba: ['host all all 127.0.0.1/32 trust'] });
    let created: { count: number }[];
    let result: CommandResult;
    try {
      result = await runNpmScript('db:check', [], {
        DATABASE_URL: postgres.url(DATABASE, 'sslmode=require'),
      });
      const admin = await initORM(postgres.url('postgres'));
      created = await admin.em
        .getConnection()
        .execute('select count(*)::int as count from pg_database where datname = ?', [DATABASE]);
      await admin.orm.close();
    } finally {
      await postgres.stop();
    }
    expect(stderrLines(result.stderr)).toEqual([
      `clerk-sync: DATABASE_URL: cannot connect to 127.0.0.1:${postgres.port}/${DATABASE}: The server does not support SSL connections`,
    ]);
    expect(result.code).toBe(1);
    // Nothing was done over plaintext: the database db:check would have created is not there.
    expect(created[0]?.count).toBe(0);
  });

  describe('a TLS-only server', () => {
    let services: Services;

    beforeAll(async () => {
      await postgres.start({ tls: certs, hba: ['hostssl all all 127.0.0.1/32 trust'] });
    });

    afterAll(async () => {
      await services?.orm.close();
    });

    it('migrates and passes db:check with sslmode=verify-full and the right CA', async () => {
      const env = { DATABASE_URL: verifyFullUrl, MIGRATION_DATABASE_URL: undefined };
      const migrated = await runNpmScript('migration:up', [], env);
      expect(migrated.code, migrated.output).toBe(0);
      const checked = await runNpmScript('db:check', [], env);
      expect(checked.code, checked.output).toBe(0);
      expect(checked.stdout).toContain('database check passed');
    });

    it('refuses a server certificate from another CA: one line naming the variable', async () => {
      const otherCa = postgres.url(DATABASE, `sslmode=verify-full&sslrootcert=${certs.otherCa}`);
      const checked = await runNpmScript('db:check', [], { DATABASE_URL: otherCa });
      const migrated = await runNpmScript('migration:up', [], {
        DATABASE_URL: verifyFullUrl,
        MIGRATION_DATABASE_URL: otherCa,
      });
      const refusal = (variable: string) =>
        new RegExp(
          `^clerk-sync: ${variable}: cannot connect to 127\\.0\\.0\\.1:${postgres.port}/${DATABASE}: .*certificate`,
        );
      expect(checked.code).toBe(1);
      expect(stderrLines(checked.stderr)).toEqual([expect.stringMatching(refusal('DATABASE_URL'))]);
      expect(migrated.code).toBe(1);
      expect(stderrLines(migrated.stderr)).toEqual([
        expect.stringMatching(refusal('MIGRATION_DATABASE_URL')),
      ]);
    });

    it('runs the pipeline end to end: the receiver reports the database, the worker stores every user', async () => {
      const environment = {
        DATABASE_URL: verifyFullUrl,
        REDIS_URL: redis.url,
        QUEUE_NAME: uniqueQueueName(),
      };
      const [receiver] = await spawnServices(['receiver', 'worker'], environment);
      expect((await health(receiver)).body).toEqual({
        status: 'ok',
        database: 'connected',
        redis: 'connected',
      });
      const users = new Set<string>();
      await sendAllAcknowledged(receiver.url, newUsers(50, users), 8);
      services = await initORM(verifyFullUrl);
      await waitUntilStored(services, users, 30_000);
    });
  });
});
