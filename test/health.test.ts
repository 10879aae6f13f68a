import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.ts';
import { startWorker } from '../src/services/worker.ts';
import { testConfig } from './support/config.ts';
import { countRows } from './support/database.ts';
import { cleanUpAfterEach, useTestDatabase } from './support/hooks.ts';
import { inspectQueue, REDIS_URL, removeQueue, uniqueQueueName } from './support/queue.ts';
import { startInProcessReceiver } from './support/receiver.ts';
import { startTcpProxy } from './support/tcp-proxy.ts';

/** The health check answers within 2 seconds, even when a dependency hangs. */
const HEALTH_TIME_BOUND_MS = 2_000;
const CLOSED_PORT = 1;

const log = createLogger({ level: 'silent' });
const cleanUpLater = cleanUpAfterEach();
const db = useTestDatabase({ migrate: false });

function withPort(url: string, port: number): string {
  const changed = new URL(url);
  changed.hostname = '127.0.0.1';
  changed.port = String(port);
  return changed.toString();
}

async function receiverWith(
  dependencies: { databaseUrl?: string; redisUrl?: string } = {},
): Promise<string> {
  const receiver = await startInProcessReceiver(
    {
      DATABASE_URL: dependencies.databaseUrl ?? db.url,
      ...(dependencies.redisUrl ? { REDIS_URL: dependencies.redisUrl } : {}),
    },
    { waitUntilHealthy: false },
  );
  cleanUpLater(() => receiver.stop());
  return receiver.url;
}

interface HealthBody {
  status: string;
  database: 'connected' | 'disconnected';
  redis: 'connected' | 'disconnected';
}

async function checkHealth(baseUrl: string) {
  const startedAt = performance.now();
  const response = await fetch(`${baseUrl}/api/v1/health`);
  return {
    status: response.status,
    body: (await response.json()) as HealthBody,
    elapsedMs: performance.now() - startedAt,
  };
}

/** A proxy to a real server, which the test can make hang (accept connections, never answer). */
async function proxyTo(url: string) {
  const proxy = await startTcpProxy(url);
  cleanUpLater(() => proxy.close());
  return proxy;
}

describe('GET /api/v1/health on the receiver', () => {
  it('answers 200 when PostgreSQL and Redis both answer, from its first answer on', async () => {
    const { status, body } = await checkHealth(await receiverWith());
    expect(status).toBe(200);
    expect(body).toEqual({ status: 'ok', database: 'connected', redis: 'connected' });
  });

  it('answers 503 with redis disconnected when nothing listens at REDIS_URL', async () => {
    const baseUrl = await receiverWith({ redisUrl: withPort(REDIS_URL, CLOSED_PORT) });
    const { status, body } = await checkHealth(baseUrl);
    expect(status).toBe(503);
    expect(body).toMatchObject({ database: 'connected', redis: 'disconnected' });
    expect(body.status).not.toBe('ok');
  });

  it('answers 503 with database disconnected once nothing listens at DATABASE_URL', async () => {
    const database = await proxyTo(db.url);
    const baseUrl = await receiverWith({ databaseUrl: database.url });
    expect((await checkHealth(baseUrl)).status).toBe(200);

    await database.close();
    const { status, body } = await checkHealth(baseUrl);
    expect(status).toBe(503);
    expect(body).toMatchObject({ database: 'disconnected', redis: 'connected' });
    expect(body.status).not.toBe('ok');
  });

  it('answers 503 within 2 s when Redis accepts connections and never answers', async () => {
    const redis = await proxyTo(REDIS_URL);
    redis.hang();
    const baseUrl = await receiverWith({ redisUrl: redis.url });
    cleanUpLater(async () => redis.recover());

    const { status, body, elapsedMs } = await checkHealth(baseUrl);
    expect(status).toBe(503);
    expect(body).toMatchObject({ database: 'connected', redis: 'disconnected' });
    expect(elapsedMs).toBeLessThan(HEALTH_TIME_BOUND_MS);
  });

  it('answers 503 within 2 s when connected dependencies stop answering, and 200 once they recover', async () => {
    const database = await proxyTo(db.url);
    const redis = await proxyTo(REDIS_URL);
    const baseUrl = await receiverWith({ databaseUrl: database.url, redisUrl: redis.url });
    expect((await checkHealth(baseUrl)).status).toBe(200);

    database.hang();
    redis.hang();
    const hung = await checkHealth(baseUrl);
    expect(hung.status).toBe(503);
    expect(hung.body).toMatchObject({ database: 'disconnected', redis: 'disconnected' });
    expect(hung.elapsedMs).toBeLessThan(HEALTH_TIME_BOUND_MS);

    database.recover();
    redis.recover();
    expect(await checkHealth(baseUrl)).toMatchObject({
      status: 200,
      body: { status: 'ok', database: 'connected', redis: 'connected' },
    });
  });
});

describe("the worker's status server", () => {
  it('serves /api/v1/health, healthy from its first answer, and /metrics', async () => {
    const queueName = uniqueQueueName();
    const worker = await startWorker(
      testConfig({ DATABASE_URL: db.url, REDIS_URL, QUEUE_NAME: queueName }),
      log,
    );
    cleanUpLater(() => removeQueue(inspectQueue(queueName)));
    cleanUpLater(() => worker.stop());
    const baseUrl = `http://127.0.0.1:${worker.port}`;

    const health = await checkHealth(baseUrl);
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok', database: 'connected', redis: 'connected' });

    const metrics = await fetch(`${baseUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    const text = await metrics.text();
    expect(text).toContain('# TYPE clerk_sync_jobs_completed_total counter');
    expect(text).toContain('# TYPE clerk_sync_job_duration_seconds histogram');
  });

  it('reports a database that does not exist as disconnected, and does not create it', async () => {
    const missing = `${db.name}_missing`;
    const worker = await startWorker(
      testConfig({
        DATABASE_URL: db.url.replace(db.name, missing),
        REDIS_URL,
        QUEUE_NAME: uniqueQueueName(),
      }),
      log,
    );
    cleanUpLater(() => worker.stop());

    const health = await checkHealth(`http://127.0.0.1:${worker.port}`);
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ database: 'disconnected', redis: 'connected' });
    expect(await countRows(db, 'pg_database', 'datname = ?', [missing])).toBe(0);
  });
});
