import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createLogger } from '../src/logger.ts';
import { CREATE_MISSING_DATABASE, initORM, migrateUp, type Services } from '../src/orm.ts';
import { createQueue, type WebhookJobData } from '../src/queue/queue.ts';
import { PROJECT_ROOT } from '../test/support/cli.ts';
import { dropDatabase, SERVER_URL, type TestDatabase } from '../test/support/database.ts';
import { tail } from '../test/support/processes.ts';
import { REDIS_URL } from '../test/support/queue.ts';
import { spawnNodeServer } from '../test/support/services.ts';
import { TEST_SECRET } from '../test/support/svix.ts';

export const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const QUEUE_PREFIX = 'bull';

/**
 * Everything one part of the benchmark set up (children, databases, queues), undone in reverse
 * order when that part ends, fails or is interrupted.
 */
export class Scope {
  static readonly #open = new Set<Scope>();
  #undo: (() => Promise<unknown>)[] = [];

  static async run<T>(body: (scope: Scope) => Promise<T>): Promise<T> {
    const scope = new Scope();
    Scope.#open.add(scope);
    try {
      return await body(scope);
    } finally {
      await scope.close();
      Scope.#open.delete(scope);
    }
  }

  /** Undoes every open scope, newest first: the harness is being interrupted. */
  static async closeAll(): Promise<void> {
    for (const scope of [...Scope.#open].reverse()) await scope.close();
  }

  defer(undo: () => Promise<unknown>): void {
    this.#undo.push(undo);
  }

  async close(): Promise<void> {
    for (let undo = this.#undo.pop(); undo; undo = this.#undo.pop()) {
      await undo().catch((error) => console.warn(`cleanup: ${error}`));
    }
  }
}

type BenchDatabase = Omit<TestDatabase, 'drop'>;

/**
 * A new, migrated database of its own, dropped with the scope. Named clerk_sync_bench_…, so a
 * leftover (the harness killed outright) is told apart from the test suites' databases.
 */
export async function freshDatabase(scope: Scope): Promise<BenchDatabase> {
  const name = `clerk_sync_bench_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const url = `${SERVER_URL}/${name}`;
  let services: Services | undefined;
  // Registered first: an interruption while it is being created still drops it.
  scope.defer(async () => {
    await services?.orm.close();
    await dropDatabase(name);
  });
  services = await initORM(url, createLogger({ level: 'silent' }), CREATE_MISSING_DATABASE);
  await migrateUp(services.orm);
  return { ...services, name, url };
}

let redis: Redis | undefined;

/** The harness's one Redis connection, for filling and watching queues. */
export function harnessRedis(): Redis {
  redis ??= new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  return redis;
}

export function closeHarnessRedis(): void {
  redis?.disconnect();
  redis = undefined;
}

/** A queue of a unique name, with the service's own job options; obliterated with the scope. */
export function freshQueue(scope: Scope): Queue<WebhookJobData> {
  const queue = createQueue(
    `bench-${randomUUID()}`,
    QUEUE_PREFIX,
    harnessRedis(),
    createLogger({ level: 'silent' }),
  );
  scope.defer(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
  });
  return queue;
}

function serviceEnv(database: BenchDatabase | undefined, queue: Queue | undefined) {
  return {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    CLERK_WEBHOOK_SIGNING_SECRET: TEST_SECRET,
    REDIS_URL,
    QUEUE_PREFIX,
    ...(database ? { DATABASE_URL: database.url } : {}),
    ...(queue ? { QUEUE_NAME: queue.name } : {}),
  };
}

/** A process under test: a Node child serving HTTP (its health route) on a loopback port. */
export interface Service {
  pid: number;
  url: string;
  /** SIGTERM, then SIGKILL if it has not exited in time; once. Resolves to its peak RSS. */
  stop(): Promise<{ peakRssMiB: number }>;
  /** Throws, with its last output, if the process has exited. */
  assertRunning(): void;
}

const READY_TIMEOUT_MS = 30_000;

/**
 * Starts `node <script>` (this very Node binary, so TypeScript runs as it does under npm) and
 * resolves once GET /api/v1/health answers 200, which for the receiver and the worker means
 * that PostgreSQL and Redis are connected. Stopped with the scope, unless stopped before for
 * its peak RSS.
 */
async function start(
  scope: Scope,
  name: string,
  script: string,
  env: Record<string, string>,
  options: { portVariable: string; nodeArgs?: string[] },
): Promise<Service> {
  const child = await spawnNodeServer(name, script, {
    ...options,
    env,
    healthyWithinMs: READY_TIMEOUT_MS,
  });
  const assertRunning = () => {
    if (!child.isRunning()) throw new Error(`${name} exited\n${tail(child)}`);
  };
  const stopNow = async () => {
    assertRunning();
    // VmHWM, the process's peak resident set size, read just before the SIGTERM.
    const peakRssMiB = await peakRss(child.pid);
    await child.stop('SIGTERM');
    return { peakRssMiB };
  };
  let stopped: Promise<{ peakRssMiB: number }> | undefined;
  const stop = () => (stopped ??= stopNow());
  scope.defer(() => stop().catch(() => undefined));
  return { pid: child.pid, url: child.url, stop, assertRunning };
}

/** Peak resident set size of a live process, in MiB, from /proc/<pid>/status. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
  if (!kib) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kib) / 1024;
}

/** The Node flags an npm script runs its script with (`node <flags> <script>`), so the bench runs the services as npm does. */
function nodeFlagsOf(scriptName: string): string[] {
  const scripts: Record<string, string> = JSON.parse(
    readFileSync(`${PROJECT_ROOT}package.json`, 'utf8'),
  ).scripts;
  const words = (scripts[scriptName] ?? '').split(/\s+/);
  return words.slice(words.indexOf('node') + 1).filter((word) => word.startsWith('--'));
}

export function startReceiver(
  scope: Scope,
  database: BenchDatabase,
  queue: Queue,
): Promise<Service> {
  return start(scope, 'receiver', 'src/bin/receiver.ts', serviceEnv(database, queue), {
    portVariable: 'PORT',
    nodeArgs: nodeFlagsOf('start:receiver'),
  });
}

export interface WorkerOptions {
  name?: string;
  /** Extra environment, e.g. WORKER_BATCH_SIZE=1. */
  env?: Record<string, string>;
  nodeArgs?: string[];
  /** Another worker in its place: a baseline. */
  script?: string;
}

export function startWorker(
  scope: Scope,
  database: BenchDatabase,
  queue: Queue,
  options: WorkerOptions = {},
): Promise<Service> {
  return start(
    scope,
    options.name ?? 'worker',
    options.script ?? 'src/bin/worker.ts',
    { ...serviceEnv(database, queue), ...options.env },
    {
      portVariable: 'WORKER_METRICS_PORT',
      nodeArgs: [...nodeFlagsOf('start:worker'), ...(options.nodeArgs ?? [])],
    },
  );
}

export function startBaseline(
  scope: Scope,
  baseline: 'verify-only' | 'verify-add' | 'inline-upsert',
  backing: { database?: BenchDatabase; queue?: Queue } = {},
): Promise<Service> {
  return start(
    scope,
    baseline,
    `bench/baselines/${baseline}.ts`,
    serviceEnv(backing.database, backing.queue),
    { portVariable: 'PORT' },
  );
}

/** The stand-in Backend API for the backfill, serving `users` generated users. */
export function startClerkApi(scope: Scope, users: number): Promise<Service> {
  return start(
    scope,
    'clerk-api',
    'bench/clerk-api-server.ts',
    { BENCH_USERS: String(users) },
    { portVariable: 'PORT' },
  );
}
