import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clerkId, sampleUserEvent } from '../src/clerk/sample-events.ts';
import {
  type ClerkEvent,
  DEFAULT_JOB_OPTIONS,
  toJobEvent,
  type WebhookJobData,
} from '../src/queue.ts';
import { countRows, createTestDatabase, type TestDatabase } from './support/database.ts';
import { inspectQueue, REDIS_URL, removeQueue, uniqueQueueName } from './support/queue.ts';
import { newSvixId } from './support/svix.ts';
import { waitFor } from './support/wait.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

let db: TestDatabase;
const children: WorkerChild[] = [];
const queues: Queue[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.process.exitCode === null && child.process.signalCode === null) {
      child.process.kill('SIGKILL');
      await child.exited;
    }
  }
  for (const queue of queues.splice(0)) await removeQueue(queue);
});
afterAll(() => db?.drop());

interface WorkerChild {
  process: ChildProcess;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `npm run start:worker` as a real process of its own, minus npm, so signals reach it directly. */
function spawnWorker(queueName: string, env: Record<string, string> = {}): WorkerChild {
  const child = spawn(process.execPath, ['src/bin/worker.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ENV: 'test',
      DATABASE_URL: db.url,
      REDIS_URL,
      QUEUE_NAME: queueName,
      WORKER_METRICS_PORT: '0',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on('data', (chunk: Buffer) =>
      output.push(...chunk.toString().split('\n').filter(Boolean)),
    );
  }
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }));
  const worker = { process: child, output, exited };
  children.push(worker);
  return worker;
}

/** A backlog of user.created jobs, queued the way the receiver queues them. */
async function backlog(size: number): Promise<{ queue: Queue<WebhookJobData>; name: string }> {
  const name = uniqueQueueName();
  const queue = inspectQueue(name);
  queues.push(queue);
  await queue.addBulk(
    Array.from({ length: size }, () => {
      const svixId = newSvixId();
      const event = sampleUserEvent('user.created', { id: clerkId('user') });
      return {
        name: 'user.created',
        data: { svixId, receivedAt: Date.now(), event: toJobEvent(event as unknown as ClerkEvent) },
        opts: { ...DEFAULT_JOB_OPTIONS, jobId: svixId },
      };
    }),
  );
  return { queue, name };
}

async function counts(queue: Queue) {
  const found = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
  return {
    waiting: found.waiting ?? 0,
    active: found.active ?? 0,
    delayed: found.delayed ?? 0,
    completed: found.completed ?? 0,
    failed: found.failed ?? 0,
  };
}

/** Waits until a worker has finished some jobs and has more in hand. */
function untilBusy(queue: Queue): Promise<boolean> {
  return waitFor(
    async () => {
      const now = await counts(queue);
      return now.completed >= 20 && now.active > 0;
    },
    15_000,
    'the worker to be busy',
  );
}

describe('the worker process', () => {
  it('runs on Node 24 and serves its own health and metrics', async () => {
    const { name } = await backlog(0);
    const worker = spawnWorker(name);
    const started = await waitFor(
      () => worker.output.find((line) => line.includes('"worker started"')),
      15_000,
      'the worker to start',
    );
    const port = JSON.parse(started).metricsPort;

    const health = await fetch(`http://127.0.0.1:${port}/api/v1/health`);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

    expect(await health.json()).toEqual({
      status: 'ok',
      database: 'connected',
      redis: 'connected',
    });
    expect(metrics).toMatch(/^clerk_sync_worker_nodejs_version_info\{version="v24\./m);
    worker.process.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
  });

  it('on SIGTERM finishes the jobs in hand, takes no more, and exits 0', async () => {
    const { queue, name } = await backlog(300);
    const first = spawnWorker(name, { WORKER_CONCURRENCY: '8' });
    await untilBusy(queue);

    first.process.kill('SIGTERM');
    const exit = await first.exited;

    expect(exit).toEqual({ code: 0, signal: null });
    expect(first.output.join('\n')).toMatch(/"msg":"stopped"/);
    const afterStop = await counts(queue);
    expect(afterStop).toMatchObject({ active: 0, failed: 0, delayed: 0 });
    expect(afterStop.waiting).toBeGreaterThan(0);
    expect(afterStop.completed + afterStop.waiting).toBe(300);
    expect(await countRows(db, 'users')).toBe(afterStop.completed);

    const second = spawnWorker(name);
    await waitFor(async () => (await counts(queue)).completed === 300, 20_000, 'the rest');
    second.process.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });

    expect(await counts(queue)).toMatchObject({ waiting: 0, active: 0, failed: 0, completed: 300 });
    expect(await countRows(db, 'users')).toBe(300);
    expect(await countRows(db, 'user_preferences')).toBe(300);
  });

  it('after SIGKILL, leaves its jobs to another worker, which stores every user exactly once', async () => {
    const before = await countRows(db, 'users');
    const { queue, name } = await backlog(300);
    const fast = { WORKER_LOCK_DURATION_MS: '1000', WORKER_CONCURRENCY: '50' };
    const killed = spawnWorker(name, fast);
    await untilBusy(queue);

    killed.process.kill('SIGKILL');
    expect((await killed.exited).signal).toBe('SIGKILL');
    const orphaned = (await counts(queue)).active;
    expect(orphaned).toBeGreaterThan(0);

    const rescuer = spawnWorker(name, fast);
    await waitFor(async () => (await counts(queue)).completed === 300, 20_000, 'every job');
    rescuer.process.kill('SIGTERM');
    expect(await rescuer.exited).toEqual({ code: 0, signal: null });

    expect(await counts(queue)).toMatchObject({ waiting: 0, active: 0, failed: 0, delayed: 0 });
    expect(await countRows(db, 'users')).toBe(before + 300);
    expect(await countRows(db, 'user_preferences')).toBe(before + 300);
  });
});
