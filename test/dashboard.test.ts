import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_PATH } from '../src/http/dashboard.ts';
import { createLogger } from '../src/logger.ts';
import { type Receiver, startReceiver } from '../src/services/receiver.ts';
import { testConfig } from './support/config.ts';
import { SERVER_URL } from './support/database.ts';
import { freePort } from './support/processes.ts';
import { type QueueWithFailures, queueWithFailures, REDIS_URL } from './support/queue.ts';

const authorization = `Basic ${Buffer.from('operator:correct horse').toString('base64')}`;
let fixture: QueueWithFailures;
let receiver: Receiver;

beforeAll(async () => {
  fixture = await queueWithFailures();
  receiver = await startReceiver(
    testConfig({
      DATABASE_URL: `${SERVER_URL}/postgres`,
      REDIS_URL,
      QUEUE_NAME: fixture.queue.name,
      DASHBOARD_USERNAME: 'operator',
      DASHBOARD_PASSWORD: 'correct horse',
    }),
    createLogger({ level: 'silent' }),
  );
});

afterAll(async () => {
  await receiver?.stop();
  await fixture?.remove();
});

function dashboard(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`http://127.0.0.1:${receiver.port}${DASHBOARD_PATH}${path}`, {
    method,
    headers: { authorization, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Every key of the queue in Redis and its serialized value: any change at all shows. */
async function queueSnapshot(): Promise<Map<string, string>> {
  const keys = (await fixture.redis.keys(`bull:${fixture.queue.name}:*`)).sort();
  const values = await Promise.all(keys.map((key) => fixture.redis.dumpBuffer(key)));
  return new Map(keys.map((key, index) => [key, values[index]?.toString('base64') ?? '']));
}

describe('the queue dashboard, with valid credentials', () => {
  it('shows the queue and its jobs, and offers retries of failed jobs only', async () => {
    const queues = await dashboard('GET', '/api/queues');
    const job = await dashboard('GET', `/api/queues/${fixture.queue.name}/${fixture.waitingId}`);

    expect(queues.status).toBe(200);
    const [shown] = ((await queues.json()) as { queues: Record<string, unknown>[] }).queues;
    expect(shown).toMatchObject({
      name: fixture.queue.name,
      allowRetries: true,
      allowCompletedRetries: false,
    });
    expect(job.status).toBe(200);
    expect(await job.json()).toMatchObject({ job: { id: fixture.waitingId } });
  });

  // :waiting and :failed stand for the ids of a waiting and a failed job of the fixture.
  const refused: [action: string, method: string, path: string, body?: unknown][] = [
    [
      'add a job',
      'POST',
      '/add',
      { name: 'user.deleted', data: { event: { type: 'user.deleted' } } },
    ],
    ["update a job's data", 'PATCH', `/:waiting/update-data`, { data: { forged: true } }],
    ['clean the failed jobs', 'PUT', '/clean/failed'],
    ['clean the completed jobs', 'PUT', '/clean/completed'],
    ['empty the queue', 'PUT', '/empty'],
    ['obliterate the queue', 'PUT', '/obliterate', {}],
    ['remove a failed job', 'PUT', `/:failed/clean`],
    ['remove a waiting job', 'PUT', `/:waiting/clean`],
    ['promote a job', 'PUT', `/:waiting/promote`],
    ['promote every delayed job', 'PUT', '/promote'],
    ['pause the queue', 'PUT', '/pause'],
    ['resume the queue', 'PUT', '/resume'],
    ["change a job's priority", 'PATCH', `/:waiting/priority`, { priority: 1 }],
    ["change a job's delay", 'PATCH', `/:waiting/delay`, { delay: 60_000 }],
    ['retry the completed jobs', 'PUT', '/retry/completed'],
    ['set the concurrency', 'PUT', '/concurrency', { concurrency: 1 }],
    ['set a rate limit', 'PUT', '/rate-limit', { max: 1, duration: 1000 }],
    ['delete a job', 'DELETE', `/:waiting`],
  ];

  it.each(refused)(
    'refuses to %s with 403, changing nothing in Redis',
    async (_, method, path, body) => {
      const before = await queueSnapshot();

      const jobPath = path
        .replace(':waiting', fixture.waitingId)
        .replace(':failed', fixture.failed[0]?.svixId ?? '');
      const response = await dashboard(method, `/api/queues/${fixture.queue.name}${jobPath}`, body);

      expect(response.status).toBe(403);
      expect(await queueSnapshot()).toEqual(before);
    },
  );

  it('refuses to pause every queue at once', async () => {
    const before = await queueSnapshot();
    expect((await dashboard('PUT', '/api/queues/pause')).status).toBe(403);
    expect(await queueSnapshot()).toEqual(before);
  });

  it('retries one failed job, then all of them, each with its full attempts again', async () => {
    const { queue, waitingId } = fixture;
    const [first, ...rest] = fixture.failed.map(({ svixId }) => svixId);

    const one = await dashboard('PUT', `/api/queues/${queue.name}/${first}/retry`);
    const notFailed = await dashboard('PUT', `/api/queues/${queue.name}/${waitingId}/retry`);
    const all = await dashboard('PUT', `/api/queues/${queue.name}/retry/failed`);

    expect(one.status).toBe(204);
    expect(notFailed.status).toBe(400);
    expect(all.status).toBe(200);
    expect(await all.json()).toMatchObject({ retried: rest.length });
    expect(await queue.getFailedCount()).toBe(0);
    for (const { svixId } of fixture.failed) {
      expect(await queue.getJobState(svixId)).toBe('waiting');
      expect((await queue.getJob(svixId))?.attemptsMade).toBe(0);
    }
  });
});

describe('the queue dashboard, with Redis unreachable', () => {
  it('answers a retry with 503, not 500', async () => {
    const unreachable = await startReceiver(
      testConfig({
        DATABASE_URL: `${SERVER_URL}/postgres`,
        REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
        QUEUE_NAME: fixture.queue.name,
        DASHBOARD_USERNAME: 'operator',
        DASHBOARD_PASSWORD: 'correct horse',
      }),
      createLogger({ level: 'silent' }),
    );
    try {
      const base = `http://127.0.0.1:${unreachable.port}${DASHBOARD_PATH}/api/queues/${fixture.queue.name}`;
      for (const path of [`/${fixture.failed[0]?.svixId}/retry`, '/retry/failed']) {
        const response = await fetch(`${base}${path}`, {
          method: 'PUT',
          headers: { authorization },
        });
        expect({ path, status: response.status }).toEqual({ path, status: 503 });
      }
    } finally {
      await unreachable.stop();
    }
  });
});
