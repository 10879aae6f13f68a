import { z } from 'zod';

const DEFAULT_DATABASE_URL = 'postgresql://postgres:postgres@127.0.0.1:5432/clerk_sync';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

const optionalText = z
  .string()
  .trim()
  .transform((value) => value || undefined)
  .optional();

const urlWithProtocols = (protocols: string[], example: string) =>
  z
    .string()
    .trim()
    .refine(
      (value) => {
        try {
          return protocols.includes(new URL(value).protocol);
        } catch {
          return false;
        }
      },
      { message: `must be a URL like ${example}` },
    );

const webhookSecrets = z
  .string()
  .trim()
  .transform((value) =>
    value
      .split(',')
      .map((secret) => secret.trim())
      .filter(Boolean),
  )
  .refine((secrets) => secrets.every((secret) => secret.startsWith('whsec_')), {
    message: 'must be one or more comma-separated secrets starting with whsec_',
  })
  .optional();

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  DATABASE_URL: urlWithProtocols(['postgres:', 'postgresql:'], DEFAULT_DATABASE_URL).default(
    DEFAULT_DATABASE_URL,
  ),
  REDIS_URL: urlWithProtocols(['redis:', 'rediss:'], DEFAULT_REDIS_URL).default(DEFAULT_REDIS_URL),
  CLERK_WEBHOOK_SIGNING_SECRET: webhookSecrets,
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(2000).default(384),
  WORKER_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(375),
  WORKER_BATCH_WINDOW_MS: z.coerce.number().int().min(0).max(1000).default(0),
  WORKER_LOCK_DURATION_MS: z.coerce.number().int().min(1_000).max(600_000).default(30_000),
  QUEUE_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'must contain only letters, digits, _ and -')
    .default('clerk-webhooks'),
  QUEUE_PREFIX: z
    .string()
    .regex(
      /^[A-Za-z0-9_{}-]+$/,
      'must contain only letters, digits, _, - and {} (a Redis Cluster hash tag)',
    )
    .default('bull'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  CLERK_SECRET_KEY: optionalText,
  CLERK_API_URL: urlWithProtocols(['http:', 'https:'], 'https://api.clerk.com').default(
    'https://api.clerk.com',
  ),
  CLERK_API_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
  DASHBOARD_USERNAME: optionalText,
  DASHBOARD_PASSWORD: optionalText,
});

export interface Config {
  readonly nodeEnv: 'development' | 'test' | 'production';
  readonly databaseUrl: string;
  readonly redisUrl: string;
  /** Svix signing secrets, newest first; empty when none is configured. */
  readonly webhookSecrets: readonly string[];
  readonly port: number;
  /** When set, the receiver serves /metrics on this port only, not on PORT. */
  readonly metricsPort: number | undefined;
  readonly workerMetricsPort: number;
  readonly workerConcurrency: number;
  /** Group commit: at most this many jobs' changes in one transaction (1 turns it off)... */
  readonly workerBatchSize: number;
  /** ...collected for at most this long. */
  readonly workerBatchWindowMs: number;
  /** How long a worker's hold on a job lasts without renewal; a dead worker's jobs are retaken after it. */
  readonly workerLockDurationMs: number;
  readonly queueName: string;
  /** BullMQ's Redis key prefix; a hash tag such as {clerk-sync} keeps a queue in one Redis Cluster slot. */
  readonly queuePrefix: string;
  readonly logLevel: string;
  /** Clerk Backend API, for backfill and reconcile. */
  readonly clerkSecretKey: string | undefined;
  readonly clerkApiUrl: string;
  /** How long one Backend API request may take to connect, to answer, and between body chunks. */
  readonly clerkApiTimeoutMs: number;
  readonly dashboard: { readonly username: string; readonly password: string } | undefined;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads and validates the environment; throws a ConfigError whose message names each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const values = parsed.data;
  if (Boolean(values.DASHBOARD_USERNAME) !== Boolean(values.DASHBOARD_PASSWORD)) {
    throw new ConfigError(
      'invalid configuration: DASHBOARD_USERNAME and DASHBOARD_PASSWORD must be set together',
    );
  }
  return Object.freeze({
    nodeEnv: values.NODE_ENV,
    databaseUrl: values.DATABASE_URL,
    redisUrl: values.REDIS_URL,
    webhookSecrets: Object.freeze(values.CLERK_WEBHOOK_SIGNING_SECRET ?? []),
    port: values.PORT,
    metricsPort: values.METRICS_PORT,
    workerMetricsPort: values.WORKER_METRICS_PORT,
    workerConcurrency: values.WORKER_CONCURRENCY,
    workerLockDurationMs: values.WORKER_LOCK_DURATION_MS,
    workerBatchSize: values.WORKER_BATCH_SIZE,
    workerBatchWindowMs: values.WORKER_BATCH_WINDOW_MS,
    queueName: values.QUEUE_NAME,
    queuePrefix: values.QUEUE_PREFIX,
    logLevel: values.LOG_LEVEL,
    clerkSecretKey: values.CLERK_SECRET_KEY,
    clerkApiUrl: values.CLERK_API_URL,
    clerkApiTimeoutMs: values.CLERK_API_TIMEOUT_MS,
    dashboard:
      values.DASHBOARD_USERNAME && values.DASHBOARD_PASSWORD
        ? Object.freeze({
            username: values.DASHBOARD_USERNAME,
            password: values.DASHBOARD_PASSWORD,
          })
        : undefined,
  });
}

/** Entry points call this: a bad environment ends the process with one readable line. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) exitWithError(error.message);
    throw error;
  }
}

export function exitWithError(message: string): never {
  process.stderr.write(`clerk-sync: ${message}\n`);
  process.exit(1);
}
