import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { postgresConnection } from '../src/database-url.ts';
import { createLogger } from '../src/logger.ts';
import { ormOptions } from '../src/orm.ts';
import { createProducerConnection, createWorkerConnection } from '../src/redis.ts';
import { parseRedisUrl } from '../src/redis-url.ts';
import { runCommand } from './support/cli.ts';
import { configError } from './support/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'clerk-sync-urls-'));
const CA_FILE = join(dir, 'root.crt');
writeFileSync(CA_FILE, '-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DB = 'postgresql://app:s3cret%40pw@db.example.com:6543/app';
const PASSWORD = 's3cret';

describe('DATABASE_URL as libpq reads it', () => {
  it('turns sslmode into TLS options the way libpq means it', () => {
    expect(postgresConnection(DB).ssl).toBeUndefined();
    expect(postgresConnection(`${DB}?sslmode=disable`).ssl).toBe(false);
    expect(postgresConnection(`${DB}?sslmode=prefer`).ssl).toEqual({ rejectUnauthorized: false });
    expect(postgresConnection(`${DB}?sslmode=require`).ssl).toEqual({ rejectUnauthorized: false });
    const verifyCa = postgresConnection(`${DB}?sslmode=verify-ca&sslrootcert=${CA_FILE}`).ssl;
    expect(verifyCa).toMatchObject({ ca: expect.stringContaining('BEGIN CERTIFICATE') });
    expect(verifyCa).toHaveProperty('checkServerIdentity', expect.any(Function));
    const verifyFull = postgresConnection(`${DB}?sslmode=verify-full&sslrootcert=${CA_FILE}`).ssl;
    expect(verifyFull).toEqual({ ca: expect.stringContaining('BEGIN CERTIFICATE') });
  });

  it('reads the server and the percent-encoded credentials', () => {
    expect(postgresConnection(DB)).toMatchObject({
      host: 'db.example.com',
      port: 6543,
      user: 'app',
      password: 's3cret@pw',
      database: 'app',
    });
  });

  it('gives MikroORM the same server, credentials and TLS (its clientUrl drops sslmode)', () => {
    const url = `${DB}?sslmode=verify-full&sslrootcert=${CA_FILE}`;
    const options = ormOptions(url);
    const { host, port, user, password, database, ssl } = postgresConnection(url);
    expect(options).toMatchObject({ host, port, user, password, dbName: database });
    expect(options.driverOptions).toMatchObject({ ssl });
  });

  it('refuses what it cannot honour, naming the variable and never the password', () => {
    const cases: [string, string][] = [
      [`${DB}?sslmode=allow`, 'DATABASE_URL sslmode=allow is not supported'],
      [`${DB}?sslmode=verify-ca`, 'DATABASE_URL sslmode=verify-ca needs sslrootcert'],
      [
        `${DB}?sslmode=verify-full&sslrootcert=${dir}/missing.crt`,
        'DATABASE_URL cannot read sslrootcert',
      ],
    ];
    for (const [url, message] of cases) {
      const error = configError({ DATABASE_URL: url }).message;
      expect(error).toContain(message);
      expect(error).not.toContain(PASSWORD);
    }
  });

  it('takes MIGRATION_DATABASE_URL for migrations, DATABASE_URL when it is unset', () => {
    expect(loadConfig({ DATABASE_URL: DB })).toMatchObject({
      migrationDatabaseUrl: DB,
      migrationDatabaseUrlVariable: 'DATABASE_URL',
    });
    const direct = 'postgresql://app:pw@db.example.com:5432/app?sslmode=require';
    expect(loadConfig({ DATABASE_URL: DB, MIGRATION_DATABASE_URL: direct })).toMatchObject({
      databaseUrl: DB,
      migrationDatabaseUrl: direct,
      migrationDatabaseUrlVariable: 'MIGRATION_DATABASE_URL',
    });
    expect(configError({ MIGRATION_DATABASE_URL: `${DB}?sslmode=bogus` }).message).toContain(
      'MIGRATION_DATABASE_URL sslmode=bogus',
    );
  });
});

describe('REDIS_URL forms', () => {
  const node = (host: string, port: number) => ({ host, port });

  it('reads a single server, Sentinel and Cluster URLs, with TLS and a password', () => {
    expect(parseRedisUrl('rediss://:pw@cache.example.com:6380/2')).toEqual({
      mode: 'standalone',
      url: 'rediss://:pw@cache.example.com:6380/2',
      tls: true,
    });
    expect(parseRedisUrl('redis+sentinel://:p%40ss@s1:26379,s2,[::1]:26380/mymaster/3')).toEqual({
      mode: 'sentinel',
      sentinels: [node('s1', 26379), node('s2', 26379), node('::1', 26380)],
      masterName: 'mymaster',
      db: 3,
      username: undefined,
      password: 'p@ss',
      tls: false,
    });
    expect(parseRedisUrl('rediss+cluster://default:pw@n1:7000,n2:7001')).toEqual({
      mode: 'cluster',
      nodes: [node('n1', 7000), node('n2', 7001)],
      username: 'default',
      password: 'pw',
      tls: true,
    });
  });

  it('refuses a malformed URL naming REDIS_URL, never quoting the password', () => {
    for (const url of [
      `http://:${PASSWORD}@cache:6379`,
      `redis+sentinel://:${PASSWORD}@s1:26379`,
      `redis+sentinel://:${PASSWORD}@s1:26379/mymaster/zero`,
      `redis+cluster://:${PASSWORD}@n1:7000/1`,
      `redis+cluster://:${PASSWORD}@n1:99999`,
      'redis://',
    ]) {
      const error = configError({ REDIS_URL: url }).message;
      expect(error, url).toMatch(/^invalid configuration: REDIS_URL /);
      expect(error, url).not.toContain(PASSWORD);
    }
  });

  it('puts the queue in one cluster slot: {clerk-sync} by default, a prefix without a hash tag refused', () => {
    const cluster = 'redis+cluster://n1:7000,n2:7001';
    expect(loadConfig({ REDIS_URL: cluster }).queuePrefix).toBe('{clerk-sync}');
    expect(loadConfig({ REDIS_URL: cluster, QUEUE_PREFIX: 'app{jobs}' }).queuePrefix).toBe(
      'app{jobs}',
    );
    for (const prefix of ['bull', 'app{}jobs', 'app}x{']) {
      expect(configError({ REDIS_URL: cluster, QUEUE_PREFIX: prefix }).message).toContain(
        'QUEUE_PREFIX must contain a hash tag',
      );
    }
    expect(loadConfig({ REDIS_URL: 'redis://cache:6379' }).queuePrefix).toBe('bull');
  });

  it('builds the client each form calls for, with the options of the receiver and the worker', () => {
    const log = createLogger({ level: 'silent' });
    const cluster = createWorkerConnection('rediss+cluster://:pw@127.0.0.1:1,127.0.0.1:2', log);
    const sentinel = createProducerConnection('redis+sentinel://:pw@127.0.0.1:1/mymaster/2', log);
    try {
      expect(cluster).toBeInstanceOf(Cluster);
      expect((cluster as Cluster).options.redisOptions).toMatchObject({
        password: 'pw',
        tls: {},
        maxRetriesPerRequest: null,
      });
      expect(sentinel).toBeInstanceOf(Redis);
      expect((sentinel as Redis).options).toMatchObject({
        sentinels: [{ host: '127.0.0.1', port: 1 }],
        name: 'mymaster',
        db: 2,
        password: 'pw',
        commandTimeout: 3_000,
      });
    } finally {
      cluster.disconnect();
      sentinel.disconnect();
    }
  });
});

describe('scripts/prepare.sh (npm start, npm test) with a TLS, Sentinel or Cluster REDIS_URL', () => {
  it('leaves the check to the services instead of failing on what redis-cli cannot read', async () => {
    // 192.0.2.0/24 is TEST-NET-1: nothing answers there, and prepare.sh must not try.
    for (const url of [
      'rediss://:pw@192.0.2.1:6380',
      'redis+sentinel://192.0.2.1:26379,192.0.2.2:26379/mymaster',
      'rediss+cluster://:pw@192.0.2.1:7000,192.0.2.2:7001',
    ]) {
      const result = await runCommand('bash', ['scripts/prepare.sh'], { REDIS_URL: url });
      expect(result, url).toMatchObject({ code: 0, output: '' });
    }
  });
});
