import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import type { Services } from '../../src/orm.ts';
import { withTimeout } from '../../src/timeout.ts';
import { countRows, createTestDatabase, sql, type TestDatabase } from './database.ts';
import { useStarted } from './hooks.ts';
import { type Delivery, isAcknowledged, newUsers, type Outcome, sendAll, tally } from './load.ts';
import { killAllChildren } from './processes.ts';
import { uniqueQueueName } from './queue.ts';
import { type PrivateRedis, startPrivateRedis } from './redis-server.ts';
import { type ServiceProcess, spawnService } from './services.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';
import { waitFor } from './wait.ts';

const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];
export type JobCounts = Record<JobState, number>;

/**
 * Everything one fault scenario runs against, all its own: a migrated database, a redis-server,
 * a TCP proxy that the worker reaches PostgreSQL through, and a queue name. Receivers and
 * workers are started as child processes on demand; stop() kills and removes all of it.
 */
export interface FaultStack {
  db: TestDatabase;
  redis: PrivateRedis;
  /** Between the workers and PostgreSQL; the receivers connect directly. */
  proxy: TcpProxy;
  queueName: string;
  startReceiver(env?: Record<string, string>): Promise<ServiceProcess>;
  startWorker(env?: Record<string, string>): Promise<ServiceProcess>;
  jobCounts(): Promise<JobCounts>;
  /** The ids of the jobs in Redis in these states (all of them by default). */
  jobIds(states?: readonly JobState[]): Promise<Set<string>>;
  /** The most attempts any finished job took (1 = first time). */
  maxAttemptsMade(): Promise<number>;
  /**
   * Waits until the queue has nothing left to run (no waiting, active, delayed job) and
   * `expectedUsers` rows exist, or fails after `timeoutMs`; returns how long it took.
   */
  waitUntilDrained(expectedUsers: number, timeoutMs: number): Promise<number>;
  /** Waits until a worker is busy: at least `completed` jobs done, and some running. */
  waitUntilBusy(completed: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startFaultStack(): Promise<FaultStack> {
  const db = await createTestDatabase();
  const cleanups: (() => Promise<unknown>)[] = [() => db.drop()];
  const stack = async () => {
    const redis = await startPrivateRedis();
    cleanups.push(() => redis.destroy());
    const proxy = await startTcpProxy(db.url);
    cleanups.push(() => proxy.close());
    const queueName = uniqueQueueName();
    // The test's own view of the queue reconnects every 200 ms after a Redis restart (BullMQ's
    // default backs off to 20 s), so that it does not add to the recovery times measured.
    const reconnect = { maxRetriesPerRequest: null, retryStrategy: () => 200 };
    const queue = new Queue(queueName, {
      connection: { host: '127.0.0.1', port: redis.port, ...reconnect },
    });
    queue.on('error', () => undefined);
    cleanups.push(() => queue.close());
    const raw = new Redis(redis.url, { ...reconnect, lazyConnect: true });
    raw.on('error', () => undefined);
    cleanups.push(async () => raw.disconnect());
    cleanups.push(killAllChildren);

    const common = { REDIS_URL: redis.url, QUEUE_NAME: queueName };

    const result: FaultStack = {
      db,
      redis,
      proxy,
      queueName,
      startReceiver: (env = {}) =>
        spawnService('receiver', { ...common, DATABASE_URL: db.url, ...env }),
      startWorker: (env = {}) =>
        spawnService('worker', {
          ...common,
          DATABASE_URL: proxy.url,
          ...env,
        }),
      async jobCounts() {
        const counts = await withTimeout(queue.getJobCounts(...JOB_STATES), 5_000, 'job counts');
        return Object.fromEntries(
          JOB_STATES.map((state) => [state, counts[state] ?? 0]),
        ) as JobCounts;
      },
      async jobIds(states = JOB_STATES) {
        const client = raw;
        const ids = await withTimeout(
          Promise.all(
            states.map((state) => {
              if (state === 'waiting') return client.lrange(queue.toKey('wait'), 0, -1);
              if (state === 'active') return client.lrange(queue.toKey('active'), 0, -1);
              return client.zrange(queue.toKey(state), 0, -1);
            }),
          ),
          10_000,
          'job ids',
        );
        return new Set(ids.flat());
      },
      async maxAttemptsMade() {
        const ids = [...(await result.jobIds(['completed', 'failed']))];
        const pipeline = raw.pipeline();
        for (const id of ids) pipeline.hget(queue.toKey(id), 'atm');
        const answers = (await withTimeout(pipeline.exec(), 10_000, 'attempts')) ?? [];
        return Math.max(0, ...answers.map(([, value]) => Number(value ?? 0)));
      },
      async waitUntilDrained(expectedUsers, timeoutMs) {
        const startedAt = performance.now();
        const deadline = Date.now() + timeoutMs;
        let last: unknown;
        while (Date.now() < deadline) {
          const [counts, users] = await Promise.all([result.jobCounts(), countRows(db, 'users')]);
          last = { ...counts, users };
          if (counts.waiting + counts.active + counts.delayed + counts.prioritized === 0) {
            if (users >= expectedUsers) return performance.now() - startedAt;
          }
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        throw new Error(
          `not drained within ${timeoutMs} ms: expected ${expectedUsers} users, last ${JSON.stringify(last)}`,
        );
      },
      async waitUntilBusy(completed) {
        await waitFor(
          async () => {
            const counts = await result.jobCounts();
            return counts.completed >= completed && counts.active > 0;
          },
          30_000,
          'a worker to be busy',
        );
      },
      async stop() {
        const errors: unknown[] = [];
        for (const cleanup of cleanups.splice(0).reverse()) {
          await cleanup().catch((error: unknown) => errors.push(error));
        }
        if (errors.length > 0) throw new AggregateError(errors, 'fault stack cleanup failed');
      },
    };
    return result;
  };
  try {
    return await stack();
  } catch (error) {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    throw error;
  }
}

/** The file's own fault stack, started before its tests and stopped after them. */
export function useFaultStack(): FaultStack {
  return useStarted(startFaultStack, (stack) => stack.stop());
}

/** A fault stack with a receiver running on it, and the users sent through it so far. */
export interface ReceiverStack {
  stack: FaultStack;
  receiver: ServiceProcess;
  users: Set<string>;
  /**
   * Sends user.created for `count` users never seen before, each added to `users`, and expects
   * every delivery acknowledged; returns the deliveries.
   */
  sendNewUsers(count: number): Promise<Delivery[]>;
  /** sendNewUsers(), then waits until every user sent so far is stored; returns how long that took. */
  storeNewUsers(count: number, timeoutMs: number): Promise<number>;
}

/** A fault stack with a receiver and a worker running on it, and the users sent so far. */
export interface RunningStack extends ReceiverStack {
  worker: ServiceProcess;
}

/**
 * useFaultStack(), and a receiver started on it before the file's tests. Like the stack, the
 * receiver this returns stands for the process once started: read it inside tests.
 */
export function useReceiverStack(receiverEnv: Record<string, string> = {}): ReceiverStack {
  const stack = useFaultStack();
  const receiver = useStarted(
    () => stack.startReceiver(receiverEnv),
    (started) => started.stop(),
  );
  const users = new Set<string>();
  const sendNewUsers = async (count: number) => {
    const deliveries = newUsers(count, users);
    await sendAllAcknowledged(receiver.url, deliveries);
    return deliveries;
  };
  return {
    stack,
    receiver,
    users,
    sendNewUsers,
    async storeNewUsers(count, timeoutMs) {
      await sendNewUsers(count);
      return stack.waitUntilDrained(users.size, timeoutMs);
    },
  };
}

/** useReceiverStack(), and a worker started on the stack after the receiver. */
export function useRunningStack(workerEnv: Record<string, string> = {}): RunningStack {
  const running = useReceiverStack();
  const worker = useStarted(
    () => running.stack.startWorker(workerEnv),
    (started) => started.stop(),
  );
  return { ...running, worker };
}

/** Sends every delivery, `concurrency` at a time, and expects each one acknowledged (202). */
export async function sendAllAcknowledged(
  baseUrl: string,
  deliveries: readonly Delivery[],
  concurrency?: number,
): Promise<void> {
  expect(tally(await sendAll(baseUrl, deliveries, concurrency))).toEqual({
    202: deliveries.length,
  });
}

/**
 * Sends each delivery to one of the receivers in turn and, as Svix does, sends again whatever
 * was not acknowledged, until all are. Every refusal must be a 503 (which Svix retries), never
 * another status nor a request left hanging. Returns every answer.
 */
export async function deliverUntilAcknowledged(
  receivers: readonly { url: string }[],
  deliveries: Delivery[],
): Promise<Outcome[]> {
  const answers: Outcome[] = [];
  let pending = deliveries;
  for (let round = 0; pending.length > 0; round++) {
    if (round > 0) await new Promise((resolve) => setTimeout(resolve, 500));
    if (round > 30) throw new Error(`${pending.length} deliveries never acknowledged`);
    const outcomes = (
      await Promise.all(
        receivers.map((receiver, index) =>
          sendAll(
            receiver.url,
            pending.filter((_, position) => position % receivers.length === index),
            16,
          ),
        ),
      )
    ).flat();
    answers.push(...outcomes);
    pending = outcomes.filter((outcome) => !isAcknowledged(outcome)).map((o) => o.delivery);
  }
  const statuses = Object.keys(tally(answers));
  expect(statuses.filter((status) => status !== '202' && status !== '503')).toEqual([]);
  return answers;
}

export interface StoredCounts {
  users: number;
  preferences: number;
  /** Users with no preferences row; must be 0. */
  usersWithoutPreferences: number;
}

export async function storedCounts(db: Services): Promise<StoredCounts> {
  const [row] = await sql<{ users: number; preferences: number; orphans: number }>(
    db,
    `select (select count(*)::int from users) as users,
            (select count(*)::int from user_preferences) as preferences,
            (select count(*)::int from users u
               where not exists (select 1 from user_preferences p where p.user_id = u.id)) as orphans`,
  );
  return {
    users: row?.users ?? -1,
    preferences: row?.preferences ?? -1,
    usersWithoutPreferences: row?.orphans ?? -1,
  };
}

/**
 * The exact-count assertion of every scenario: these Clerk users and no other are stored, each
 * exactly once, each with exactly one preferences row.
 */
export async function expectExactlyStored(
  db: Services,
  clerkUserIds: Iterable<string>,
): Promise<void> {
  const expected = new Set(clerkUserIds);
  const rows = await sql<{ clerk_user_id: string; preferences: number }>(
    db,
    `select u.clerk_user_id, count(p.id)::int as preferences
       from users u left join user_preferences p on p.user_id = u.id
      group by u.clerk_user_id`,
  );
  const stored = new Set(rows.map((row) => row.clerk_user_id));
  const missing = [...expected].filter((id) => !stored.has(id));
  const unexpected = [...stored].filter((id) => !expected.has(id));
  const wrongPreferences = rows.filter((row) => row.preferences !== 1);
  expect({
    missing: missing.length,
    unexpected: unexpected.length,
    wrongPreferences: wrongPreferences.length,
    firstMissing: missing.slice(0, 5),
  }).toEqual({ missing: 0, unexpected: 0, wrongPreferences: 0, firstMissing: [] });
  expect(await storedCounts(db)).toEqual({
    users: expected.size,
    preferences: expected.size,
    usersWithoutPreferences: 0,
  });
}

/** Milliseconds until `condition` holds (waitFor's polling); fails after `timeoutMs`. */
export async function timeUntil(
  condition: () => Promise<boolean>,
  timeoutMs: number,
  description = 'condition',
): Promise<number> {
  const startedAt = performance.now();
  await waitFor(condition, timeoutMs, description);
  return performance.now() - startedAt;
}

/**
 * Waits until `users` rows exist (the number of these Clerk users), then expects exactly these
 * users stored: for services whose queue the test does not watch.
 */
export async function waitUntilStored(
  db: Services,
  clerkUserIds: Set<string>,
  timeoutMs: number,
): Promise<void> {
  await waitFor(
    async () => (await countRows(db, 'users')) === clerkUserIds.size,
    timeoutMs,
    `${clerkUserIds.size} users`,
  );
  await expectExactlyStored(db, clerkUserIds);
}

/** Starts timing a scenario; its report() adds how long the scenario took to its figures. */
export function startScenario(name: string) {
  const startedAt = performance.now();
  return {
    report(figures: Record<string, unknown>): void {
      report(name, { ...figures, scenarioMs: Math.round(performance.now() - startedAt) });
    },
  };
}

/** One line of figures per scenario, for the suite's output. */
export function report(scenario: string, figures: Record<string, unknown>, suite = 'faults'): void {
  process.stdout.write(`[${suite}] ${scenario} ${JSON.stringify(figures)}\n`);
}
