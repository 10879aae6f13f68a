import { PROJECT_ROOT } from './cli.ts';
import { metricsText } from './http.ts';
import { type Child, freePort, spawnChild, tail } from './processes.ts';
import { TEST_SECRET } from './svix.ts';

const HEALTHY_WITHIN_MS = 20_000;
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

/** A Node server of the project's as a child process, and the base URL of its HTTP port. */
export interface ServiceProcess extends Child {
  port: number;
  url: string;
}

export interface ServiceEnvironment {
  DATABASE_URL: string;
  REDIS_URL: string;
  QUEUE_NAME: string;
  [name: string]: string;
}

/**
 * `node <script>` of the project as a real process, minus npm so that signals reach it
 * directly: this Node (24, the project's pinned one, which runs the TypeScript sources as they
 * are), told its port in `portVariable`. Resolves once its GET /api/v1/health answers 200.
 */
export async function spawnNodeServer(
  name: string,
  script: string,
  options: {
    portVariable: string;
    env: Record<string, string | undefined>;
    nodeArgs?: string[];
    healthyWithinMs?: number;
  },
): Promise<ServiceProcess> {
  if (NODE_MAJOR < 24) {
    throw new Error(
      `the process suites need Node 24 (npx vitest runs the pinned one); this is ${process.version}`,
    );
  }
  const port = await freePort();
  const child = spawnChild(name, process.execPath, [...(options.nodeArgs ?? []), script], {
    cwd: PROJECT_ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...options.env,
      [options.portVariable]: String(port),
    },
  });
  const service: ServiceProcess = Object.assign(child, { port, url: `http://127.0.0.1:${port}` });
  await waitUntilHealthy(service, options.healthyWithinMs);
  return service;
}

/**
 * `npm run start:receiver` / `start:worker`, as spawnNodeServer runs them. `start` is `npm
 * start`'s process (migrations, then both in one process), answering on the receiver's port;
 * its worker's status port comes from `environment`.
 */
export function spawnService(
  kind: 'receiver' | 'worker' | 'start',
  environment: ServiceEnvironment,
): Promise<ServiceProcess> {
  return spawnNodeServer(kind, `src/bin/${kind}.ts`, {
    portVariable: kind === 'worker' ? 'WORKER_METRICS_PORT' : 'PORT',
    env: {
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      CLERK_WEBHOOK_SIGNING_SECRET: TEST_SECRET,
      ...environment,
    },
  });
}

/** spawnService() for each of these kinds at once, all on one environment. */
export function spawnServices<const K extends ('receiver' | 'worker')[]>(
  kinds: K,
  environment: ServiceEnvironment,
): Promise<{ [I in keyof K]: ServiceProcess }> {
  const started = Promise.all(kinds.map((kind) => spawnService(kind, environment)));
  return started as Promise<{ [I in keyof K]: ServiceProcess }>;
}

export interface Health {
  status: number;
  body: { status?: string; database?: string; redis?: string };
  ms: number;
}

export async function health(service: ServiceProcess): Promise<Health> {
  const startedAt = performance.now();
  const response = await fetch(`${service.url}/api/v1/health`, {
    signal: AbortSignal.timeout(5_000),
  });
  const body = (await response.json()) as Health['body'];
  return { status: response.status, body, ms: performance.now() - startedAt };
}

export async function waitUntilHealthy(
  service: ServiceProcess,
  timeoutMs = HEALTHY_WITHIN_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!service.isRunning()) throw new Error(`${service.name} exited\n${tail(service)}`);
    try {
      const answer = await health(service);
      if (answer.status === 200) return;
      last = JSON.stringify(answer.body);
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${service.name} not healthy within ${timeoutMs} ms (${last})\n${tail(service)}`);
}

/** The sum of a Prometheus counter over all its label sets, from a service's /metrics. */
export async function metricTotal(service: ServiceProcess, name: string): Promise<number> {
  const text = await metricsText(service.url);
  let total = 0;
  for (const line of text.split('\n')) {
    const match = line.match(/^(\w+)(?:\{[^}]*\})? ([0-9.e+-]+)$/);
    if (match?.[1] === name) total += Number(match[2]);
  }
  return total;
}
