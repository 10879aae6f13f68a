import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_PATH } from '../src/http/dashboard.ts';
import { createLogger } from '../src/logger.ts';
import { createQueue } from '../src/queue.ts';
import { type Receiver, startReceiver } from '../src/services/receiver.ts';
import { testConfig } from './support/config.ts';
import { SERVER_URL } from './support/database.ts';
import {
  addDelivery,
  failWaitingJobs,
  REDIS_URL,
  removeQueue,
  uniqueQueueName,
} from './support/queue.ts';
import { newSvixId } from './support/svix.ts';

const queueName = uniqueQueueName();
const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
const queue = createQueue(queueName, 'bull', redis, createLogger({ level: 'silent' }));
const failedIds = [newSvixId(), newSvixId(), newSvixId()];
const waitingId = newSvixId();
const authorization = `Basic ${Buffer.from('operator:correct horse').toString('base64')}`;
let receiver: Receiver;

beforeAll(async () => {
  for (const svixId of failedIds) await addDelivery(queue, svixId);
  await failWaitingJobs(queue, failedIds.length);
  await addDelivery(queue, waitingId);
  receiver = await startReceiver(
    testConfig({
      DATABASE_URL: `${SERVER_URL}/postgres`,
      REDIS_URL,
      QUEUE_NAME: queueName,
      DASHBOARD_USERNAME: 'operator',
      DASHBOARD_PASSWORD: 'correct horse',
    }),
    createLogger({ level: 'silent' }),
  );
});

afterAll(async () => {
  await receiver?.stop();
  await removeQueue(queue);
  redis.disconnect();
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
  const keys = (await redis.keys(`bull:${queueName}:*`)).sort();
  const values = await Promise.all(keys.map((key) => redis.dumpBuffer(key)));
  return new Map(keys.map((key, index) => [key, values[index]?.toString('base64') ?? '']));
}

describe('the queue dashboard, with valid credentials', () => {
  it('shows the queue and its jobs, read-only with retries of failed jobs', async () => {
    const queues = await dashboard('GET', '/api/queues');
    const job = await dashboard('GET', `/api/queues/${queueName}/${waitingId}`);

    expect(queues.status).toBe(200);
    const [shown] = ((await queues.json()) as { queues: Record<string, unknown>[] }).queues;
    expect(shown).toMatchObject({
      name: queueName,
      readOnlyMode: true,
      allowRetries: true,
      allowCompletedRetries: false,
    });
    expect(job.status).toBe(200);
    expect(await job.json()).toMatchObject({ job: { id: waitingId } });
  });

  const [someFailed] = failedIds as [string];
  const refused: [action: string, method: string, path: string, body?: unknown][] = [
    [
      'add a job',
      'POST',
      '/add',
      { name: 'user.deleted', data: { event: { type: 'user.deleted' } } },
    ],
    ["update a job's data", 'PATCH', `/${waitingId}/update-data`, { data: { forged: true } }],
    ['clean the failed jobs', 'PUT', '/clean/failed'],
    ['clean the completed jobs', 'PUT', '/clean/completed'],
    ['empty the queue', 'PUT', '/empty'],
    ['obliterate the queue', 'PUT', '/obliterate', {}],
    ['remove a failed job', 'PUT', `/${someFailed}/clean`],
    ['remove a waiting job', 'PUT', `/${waitingId}/clean`],
    ['promote a job', 'PUT', `/${waitingId}/promote`],
    ['promote every delayed job', 'PUT', '/promote'],
    ['pause the queue', 'PUT', '/pause'],
    ['resume the queue', 'PUT', '/resume'],
    ["change a job's priority", 'PATCH', `/${waitingId}/priority`, { priority: 1 }],
    ["change a job's delay", 'PATCH', `/${waitingId}/delay`, { delay: 60_000 }],
    ['retry the completed jobs', 'PUT', '/retry/completed'],
    ['set the concurrency', 'PUT', '/concurrency', { concurrency: 1 }],
    ['set a rate limit', 'PUT', '/rate-limit', { max: 1, duration: 1000 }],
    ['delete a job', 'DELETE', `/${waitingId}`],
  ];

  it.each(refused)(
    'refuses to %s with 403, changing nothing in Redis',
    async (_, method, path, body) => {
      const before = await queueSnapshot();

      const response = await dashboard(method, `/api/queues/${queueName}${path}`, body);

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
    const [first, ...rest] = failedIds as [string, ...string[]];

    const one = await dashboard('PUT', `/api/queues/${queueName}/${first}/retry`);
    const notFailed = await dashboard('PUT', `/api/queues/${queueName}/${waitingId}/retry`);
    const all = await dashboard('PUT', `/api/queues/${queueName}/retry/failed`);

    expect(one.status).toBe(204);
    expect(notFailed.status).toBe(400);
    expect(all.status).toBe(200);
    expect(await all.json()).toMatchObject({ retried: rest.length });
    expect(await queue.getFailedCount()).toBe(0);
    for (const id of failedIds) {
      expect(await queue.getJobState(id)).toBe('waiting');
      expect((await queue.getJob(id))?.attemptsMade).toBe(0);
    }
  });
});
