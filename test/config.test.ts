import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { READ_ONLY_DATABASE } from '../src/errors.ts';
import { type CommandResult, runCommand, runNpmScript } from './support/cli.ts';
import { configError } from './support/config.ts';
import { countRows, dropDatabase, makeReadOnly } from './support/database.ts';
import {
  type FakeClerkApi,
  fakeClerkEnv,
  generateUsers,
  startFakeClerkApi,
} from './support/fake-clerk-api.ts';
import { useStarted, useTestDatabase } from './support/hooks.ts';

const SECRET_A = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SECRET_B = 'whsec_c2Vjb25kIHNlY3JldCBmb3Igcm90YXRpb24=';

describe('loadConfig', () => {
  it('falls back to the documented defaults when nothing is set', () => {
    const config = loadConfig({});
    expect(config.databaseUrl).toBe('postgresql://postgres:postgres@127.0.0.1:5432/clerk_sync');
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(config.port).toBe(3000);
    expect(config.webhookSecrets).toEqual([]);
    expect(config.dashboard).toBeUndefined();
  });

  it('returns a frozen config, secrets and credentials included', () => {
    const config = loadConfig({
      CLERK_WEBHOOK_SIGNING_SECRET: SECRET_A,
      DASHBOARD_USERNAME: 'operator',
      DASHBOARD_PASSWORD: 'correct horse',
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.webhookSecrets)).toBe(true);
    expect(Object.isFrozen(config.dashboard)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(config.port).toBe(3000);
  });

  it('reads PORT as a number', () => {
    expect(loadConfig({ PORT: '8080' }).port).toBe(8080);
    expect(configError({ PORT: 'eighty' }).message).toContain('PORT');
  });

  it('reads the connection cap and keep-alive timeout, 1,000 and 5 s by default', () => {
    expect(loadConfig({})).toMatchObject({ maxConnections: 1_000, keepAliveTimeoutMs: 5_000 });
    expect(loadConfig({ MAX_CONNECTIONS: '50', KEEP_ALIVE_TIMEOUT_MS: '65000' })).toMatchObject({
      maxConnections: 50,
      keepAliveTimeoutMs: 65_000,
    });
    expect(configError({ MAX_CONNECTIONS: '0' }).message).toContain('MAX_CONNECTIONS');
  });

  it('splits comma-separated whsec_ secrets into a list, in order', () => {
    const config = loadConfig({ CLERK_WEBHOOK_SIGNING_SECRET: ` ${SECRET_A} , ${SECRET_B} ` });
    expect(config.webhookSecrets).toEqual([SECRET_A, SECRET_B]);
  });

  it('rejects a secret that is not a whsec_ secret, without echoing it', () => {
    const error = configError({
      CLERK_WEBHOOK_SIGNING_SECRET: `${SECRET_A},sk_live_notawebhooksecret`,
    });
    expect(error.message).toContain('CLERK_WEBHOOK_SIGNING_SECRET');
    expect(error.message).not.toContain('sk_live_notawebhooksecret');
  });

  it('rejects a DATABASE_URL that is not a PostgreSQL URL, naming the variable', () => {
    for (const url of ['mysql://admin:s3cret@db.internal/app', 'not a url']) {
      const error = configError({ DATABASE_URL: url });
      expect(error.message).toContain('DATABASE_URL');
      expect(error.message).not.toContain('s3cret');
    }
  });

  it('rejects a DASHBOARD_USERNAME without a DASHBOARD_PASSWORD, and the reverse', () => {
    expect(configError({ DASHBOARD_USERNAME: 'operator' }).message).toContain('DASHBOARD_PASSWORD');
    expect(configError({ DASHBOARD_PASSWORD: 'correct horse' }).message).toContain(
      'DASHBOARD_USERNAME',
    );
  });

  it('rejects a dashboard password shorter than 16 characters in production, naming the variable', () => {
    const production = { NODE_ENV: 'production', DASHBOARD_USERNAME: 'operator' };
    expect(configError({ ...production, DASHBOARD_PASSWORD: 'admin' }).message).toMatch(
      /DASHBOARD_PASSWORD must be at least 16 characters when NODE_ENV=production/,
    );
    const password = 'a'.repeat(16);
    expect(loadConfig({ ...production, DASHBOARD_PASSWORD: password }).dashboard?.password).toBe(
      password,
    );
  });

  it('configures the dashboard only when both credentials are set', () => {
    const config = loadConfig({ DASHBOARD_USERNAME: 'operator', DASHBOARD_PASSWORD: 'pw' });
    expect(config.dashboard).toEqual({ username: 'operator', password: 'pw' });
  });
});

function prepareDatabase(env: Record<string, string>): Promise<CommandResult> {
  return runCommand('node_modules/.bin/tsx', ['src/bin/prepare-database.ts'], env);
}

function expectOneReadableLine(stderr: string, mustName: string): void {
  const lines = stderr.split('\n').filter(Boolean);
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toContain(mustName);
  expect(stderr).not.toContain('    at ');
}

describe('prepare-database command', () => {
  it('runs on Node 24', async () => {
    const result = await runCommand('node', ['-p', 'process.versions.node']);
    expect(result.stdout.trim()).toMatch(/^24\./);
  });

  it('exits 1 with one line naming DATABASE_URL when it is not a PostgreSQL URL', async () => {
    const result = await prepareDatabase({ DATABASE_URL: 'mysql://x' });
    expect(result.code).toBe(1);
    expectOneReadableLine(result.stderr, 'DATABASE_URL');
  });

  it('exits 1 with one line naming DATABASE_URL when nothing listens there, without its password', async () => {
    const result = await prepareDatabase({
      DATABASE_URL: 'postgresql://postgres:s3cret@127.0.0.1:1/clerk_sync',
    });
    expect(result.code).toBe(1);
    expectOneReadableLine(result.stderr, 'DATABASE_URL');
    expect(result.stderr).toContain('127.0.0.1:1');
    expect(result.stderr).not.toContain('s3cret');
  });

  it('exits 1 with one line naming the variable for any other bad setting', async () => {
    const result = await prepareDatabase({ CLERK_WEBHOOK_SIGNING_SECRET: 'not-a-secret' });
    expect(result.code).toBe(1);
    expectOneReadableLine(result.stderr, 'CLERK_WEBHOOK_SIGNING_SECRET');
  });
});

describe('command-line arguments', () => {
  it('prints the usage and succeeds on --help', async () => {
    const result = await runCommand('npm', ['run', '-s', 'jobs', '--', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^usage: npm run jobs/);
  });

  it('names a mistyped option in one line and fails', async () => {
    const result = await runCommand('npm', ['run', '-s', 'backfill', '--', '--dryrun']);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringContaining("'--dryrun'")]);
  });
});

describe('a DATABASE_URL naming a database that does not exist', () => {
  const db = useTestDatabase({ migrate: false });
  /** A database name no test has made, on the test server, and its URL. */
  const missing = (suffix: string) => {
    const name = `${db.name}_${suffix}`;
    return { name, url: db.url.replace(db.name, name) };
  };
  /** Whether the database is there now; if it is, it is dropped. */
  async function wasCreated(name: string): Promise<boolean> {
    const created = (await countRows(db, 'pg_database', 'datname = ?', [name])) > 0;
    if (created) await dropDatabase(name);
    return created;
  }

  it.each([
    ['backfill', ['--dry-run']],
    ['db:check', []],
  ])('fails npm run %s in one line naming it, and creates nothing', async (script, args) => {
    const database = missing(script.replace(':', '_'));
    const result = await runNpmScript(script, args, {
      DATABASE_URL: database.url,
      CLERK_SECRET_KEY: 'sk_test_unused',
      CLERK_API_URL: 'http://127.0.0.1:1',
    });

    expect(await wasCreated(database.name)).toBe(false);
    expect(result.code).toBe(1);
    expectOneReadableLine(result.stderr, `DATABASE_URL: cannot connect to`);
    expect(result.stderr).toContain(`database "${database.name}" does not exist`);
  });

  it('is created by the migration commands, which are meant to', async () => {
    const database = missing('migrations');
    const result = await prepareDatabase({ DATABASE_URL: database.url });

    expect(await wasCreated(database.name)).toBe(true);
    expect(result.code, result.stderr).toBe(0);
  });
});

describe('a DATABASE_URL naming a read-only database (a standby, a read replica)', () => {
  const db = useTestDatabase();
  const api = useStarted<FakeClerkApi>(
    () => startFakeClerkApi(generateUsers(3)),
    (started) => started.close(),
  );
  beforeAll(() => makeReadOnly(db));
  const run = (script: string, args: string[]) =>
    runNpmScript(script, args, { ...fakeClerkEnv(api), DATABASE_URL: db.url });

  it.each([
    ['backfill', []],
    ['reconcile', ['--apply']],
  ])(
    'fails npm run %s %j in one line naming the primary, before reading Clerk',
    async (script, args) => {
      const requestsBefore = api.requests.length;
      const result = await run(script, args);

      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`clerk-sync: ${READ_ONLY_DATABASE}\n`);
      expect(api.requests.length).toBe(requestsBefore);
    },
  );

  it.each([
    ['backfill', ['--dry-run']],
    ['reconcile', []],
  ])('still serves npm run %s %j, which writes nothing', async (script, args) => {
    const result = await run(script, args);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('3');
  });
});

describe('a DATABASE_URL naming a database that is not migrated', () => {
  const db = useTestDatabase({ migrate: false });
  const api = useStarted<FakeClerkApi>(
    () => startFakeClerkApi(generateUsers(3)),
    (started) => started.close(),
  );

  it.each([
    ['backfill', ['--dry-run']],
    ['reconcile', []],
  ])(
    'fails npm run %s in one line naming the migration command, before reading Clerk',
    async (script, args) => {
      const requestsBefore = api.requests.length;
      const result = await runNpmScript(script, args, {
        ...fakeClerkEnv(api),
        DATABASE_URL: db.url,
      });

      expect(result.code).toBe(1);
      expectOneReadableLine(result.stderr, 'run npm run migration:up');
      expect(result.stderr).toBe(
        'clerk-sync: DATABASE_URL: the database is not migrated (function lock_and_read_clerk_users(text[], unknown) does not exist); run npm run migration:up\n',
      );
      expect(api.requests.length).toBe(requestsBefore);
    },
  );
});
