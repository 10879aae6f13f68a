import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCommand } from './support/cli.ts';
import { useTestDatabase } from './support/hooks.ts';
import { freePort, spawnChild, tail } from './support/processes.ts';
import { inspectQueue, removeQueue, uniqueQueueName } from './support/queue.ts';
import { TEST_SECRET } from './support/svix.ts';
import { waitFor } from './support/wait.ts';

const dockerfile = readFileSync('Dockerfile', 'utf8');
const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true });

/** The exec-form JSON array of a Dockerfile instruction (CMD, or HEALTHCHECK's CMD). */
function execForm(pattern: RegExp): string[] {
  const match = pattern.exec(dockerfile.replace(/\\\n/g, ' '));
  if (!match?.[1]) throw new Error(`no ${pattern} in Dockerfile`);
  return JSON.parse(match[1]);
}

const db = useTestDatabase();

/** A database URL on a free port that nothing listens on. */
async function unreachableDatabase(): Promise<string> {
  return `postgresql://postgres:postgres@127.0.0.1:${await freePort()}/clerk_sync`;
}

describe('Dockerfile', () => {
  it('builds in two stages, runs as a non-root user on Node 24 with production dependencies only', () => {
    expect(dockerfile.match(/^FROM node:24\S*/gm)).toHaveLength(2);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK /m);
  });

  it.each([
    ['', () => db.url],
    [
      ' with PostgreSQL unreachable, which the receiver does not need to queue',
      unreachableDatabase,
    ],
  ])(
    "starts with the image's command outside Docker, and its health check passes%s",
    async (_label, databaseUrl) => {
      const [command, ...args] = execForm(/^CMD (\[.*\])$/m);
      const [healthCommand, ...healthArgs] = execForm(/HEALTHCHECK .*?CMD (\[.*\])/m);
      expect(command).toBe('node');
      expect(healthCommand).toBe('node');
      const port = String(await freePort());
      const queueName = uniqueQueueName();
      const env = {
        NODE_ENV: 'production',
        DATABASE_URL: await databaseUrl(),
        CLERK_WEBHOOK_SIGNING_SECRET: TEST_SECRET,
        PORT: port,
        HEALTH_PORT: port,
        QUEUE_NAME: queueName,
        LOG_LEVEL: 'warn',
      };
      const child = spawnChild('image command', process.execPath, args, {
        env: { ...process.env, ...env },
      });
      await waitFor(
        async () => (await runCommand(process.execPath, healthArgs, env)).code === 0,
        15_000,
        'the image health check to pass',
      ).finally(() => child.stop('SIGTERM'));
      await removeQueue(inspectQueue(queueName));
      expect((await child.exited).code, tail(child)).toBe(0);
    },
  );

  it('refuses to start in production without a signing secret, in one line', async () => {
    const [, ...args] = execForm(/^CMD (\[.*\])$/m);
    const result = await runCommand(process.execPath, args, {
      NODE_ENV: 'production',
      DATABASE_URL: db.url,
      CLERK_WEBHOOK_SIGNING_SECRET: '',
      PORT: '0',
    });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([
      expect.stringContaining('CLERK_WEBHOOK_SIGNING_SECRET is required'),
    ]);
  });
});

describe('docker-compose.yml', () => {
  it('runs PostgreSQL with pgvector and Redis with append-only persistence, both with health checks', () => {
    const { postgres, redis } = compose.services;
    expect(postgres.image).toMatch(/^pgvector\/pgvector:/);
    expect(postgres.healthcheck.test.join(' ')).toContain('pg_isready');
    expect(redis.command).toEqual(expect.arrayContaining(['--appendonly', 'yes']));
    expect(redis.healthcheck.test.join(' ')).toContain('redis-cli ping');
  });

  it('runs Redis with a password from a required variable, which every service and the health check use', () => {
    const { redis } = compose.services;
    const services = compose.services as Record<string, { environment?: Record<string, string> }>;
    const password = redis.command[redis.command.indexOf('--requirepass') + 1];
    // Compose refuses to start when a variable written `${NAME:?message}` is unset.
    expect(password.startsWith(`\${REDIS_PASSWORD:?`)).toBe(true);
    // redis-cli, which runs the health check, authenticates with REDISCLI_AUTH.
    expect(redis.environment.REDISCLI_AUTH).toBe(password);
    const clients = Object.keys(services).filter((name) => services[name]?.environment?.REDIS_URL);
    expect(clients.sort()).toEqual(['receiver', 'worker']);
    for (const name of clients) {
      const url = new URL(services[name]?.environment?.REDIS_URL ?? '');
      expect(decodeURIComponent(url.password)).toBe(`\${REDIS_PASSWORD}`);
      expect(url.host).toBe('redis:6379');
    }
  });

  it('migrates once before the receiver and the worker start, both built from the Dockerfile', () => {
    const { migrate, receiver, worker } = compose.services;
    expect(migrate.command.join(' ')).toContain('migration:up');
    for (const service of [receiver, worker]) {
      expect(service.build).toBe('.');
      expect(service.depends_on.migrate.condition).toBe('service_completed_successfully');
      expect(service.depends_on.postgres.condition).toBe('service_healthy');
      expect(service.depends_on.redis.condition).toBe('service_healthy');
    }
    expect(receiver.command.at(-1)).toBe('src/bin/receiver.ts');
    expect(worker.command.at(-1)).toBe('src/bin/worker.ts');
  });
});
