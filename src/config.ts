import { z } from 'zod';
import { postgresConnection } from './database-url.ts';
import { ConfigError } from './errors.ts';
import { parseRedisUrl, REDIS_URL_FORMS } from './redis-url.ts';

const DEFAULT_DATABASE_URL = 'postgresql://postgres:postgres@127.0.0.1:5432/clerk_sync';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** Defaults of every HTTP server of ours; MAX_CONNECTIONS and KEEP_ALIVE_TIMEOUT_MS set the receiver's. */
export const DEFAULT_MAX_CONNECTIONS = 1_000;
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;

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

/** A postgres:// URL whose TLS settings (sslmode, sslrootcert) can be honoured. */
const databaseUrl = urlWithProtocols(
  ['postgres:', 'postgresql:'],
  DEFAULT_DATABASE_URL,
).superRefine((value, context) => {
  if (!/^postgres(ql)?:\/\//.test(value)) return; // the protocol check above says why
  try {
    postgresConnection(value);
  } catch (error) {
    context.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

const redisUrl = z
  .string()
  .trim()
  .superRefine((value, context) => {
    try {
      parseRedisUrl(value);
    } catch (error) {
      context.addIssue({
        code: 'custom',
        message: `${(error as Error).message}; expected ${REDIS_URL_FORMS}`,
      });
    }
  });

/** BullMQ on Redis Cluster needs every key of a queue in one slot: a prefix with a hash tag. */
export const CLUSTER_QUEUE_PREFIX = '{clerk-sync}';
const DEFAULT_QUEUE_PREFIX = 'bull';

/** A Redis Cluster hash tag: the first `{`, then at least one character before the next `}`. */
const HASH_TAG = /^[^{]*\{[^}]+\}/;

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

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const port = integer(0, 65535);

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  DATABASE_URL: databaseUrl.default(DEFAULT_DATABASE_URL),
  MIGRATION_DATABASE_URL: optionalText.pipe(databaseUrl.optional()),
  REDIS_URL: redisUrl.default(DEFAULT_REDIS_URL),
  CLERK_WEBHOOK_SIGNING_SECRET: webhookSecrets,
  PORT: port.default(3000),
  METRICS_PORT: port.optional(),
  MAX_CONNECTIONS: integer(1, 1_000_000).default(DEFAULT_MAX_CONNECTIONS),
  KEEP_ALIVE_TIMEOUT_MS: integer(0, 600_000).default(DEFAULT_KEEP_ALIVE_TIMEOUT_MS),
  WORKER_METRICS_PORT: port.default(9464),
  WORKER_CONCURRENCY: integer(1, 2000).default(384),
  WORKER_BATCH_SIZE: integer(1, 1000).default(375),
  WORKER_BATCH_WINDOW_MS: integer(0, 1000).default(0),
  WORKER_LOCK_DURATION_MS: integer(1_000, 600_000).default(30_000),
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
    .optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  CLERK_SECRET_KEY: optionalText,
  CLERK_API_URL: urlWithProtocols(['http:', 'https:'], 'https://api.clerk.com').default(
    'https://api.clerk.com',
  ),
  CLERK_API_TIMEOUT_MS: integer(100, 600_000).default(30_000),
  DASHBOARD_USERNAME: optionalText,
  DASHBOARD_PASSWORD: optionalText,
});

/** Sixteen random characters are out of reach of guessing over HTTP. */
const MIN_DASHBOARD_PASSWORD = 16;

/**
 * The environment, validated, as the typed config every process reads. Cross-field rules are
 * checked here too, so that one list names everything wrong.
 */
const configSchema = envSchema.transform((values, context) => {
  if (Boolean(values.DASHBOARD_USERNAME) !== Boolean(values.DASHBOARD_PASSWORD)) {
    context.addIssue({
      code: 'custom',
      path: ['DASHBOARD_USERNAME'],
      message: 'and DASHBOARD_PASSWORD must be set together',
    });
  }
  const password = values.DASHBOARD_PASSWORD;
  if (values.NODE_ENV === 'production' && password && password.length < MIN_DASHBOARD_PASSWORD) {
    context.addIssue({
      code: 'custom',
      path: ['DASHBOARD_PASSWORD'],
      message: `must be at least ${MIN_DASHBOARD_PASSWORD} characters when NODE_ENV=production: the dashboard shows email addresses and retries jobs, and a short password can be guessed over HTTP (openssl rand -hex 16 makes one)`,
    });
  }
  const cluster = parseRedisUrl(values.REDIS_URL).mode === 'cluster';
  if (cluster && values.QUEUE_PREFIX !== undefined && !HASH_TAG.test(values.QUEUE_PREFIX)) {
    context.addIssue({
      code: 'custom',
      path: ['QUEUE_PREFIX'],
      message: `must contain a hash tag such as ${CLUSTER_QUEUE_PREFIX} with a Redis Cluster REDIS_URL, so that all of a queue's keys share one slot`,
    });
  }
  return {
    nodeEnv: values.NODE_ENV,
    databaseUrl: values.DATABASE_URL,
    /** The direct connection migrations need when DATABASE_URL goes through a transaction pooler. */
    migrationDatabaseUrl: values.MIGRATION_DATABASE_URL ?? values.DATABASE_URL,
    /** Where migrationDatabaseUrl came from, for messages: DATABASE_URL unless the other is set. */
    migrationDatabaseUrlVariable: values.MIGRATION_DATABASE_URL
      ? ('MIGRATION_DATABASE_URL' as const)
      : ('DATABASE_URL' as const),
    redisUrl: values.REDIS_URL,
    /** Svix signing secrets, newest first; empty when none is configured. */
    webhookSecrets: Object.freeze(values.CLERK_WEBHOOK_SIGNING_SECRET ?? []),
    port: values.PORT,
    /** When set, the receiver serves /metrics on this port only, not on PORT. */
    metricsPort: values.METRICS_PORT,
    /** The receiver closes connections beyond this many at once. */
    maxConnections: values.MAX_CONNECTIONS,
    /** How long the receiver keeps an idle keep-alive connection; above a load balancer's idle timeout. */
    keepAliveTimeoutMs: values.KEEP_ALIVE_TIMEOUT_MS,
    workerMetricsPort: values.WORKER_METRICS_PORT,
    workerConcurrency: values.WORKER_CONCURRENCY,
    /** How long a worker's hold on a job lasts without renewal; a dead worker's jobs are retaken after it. */
    workerLockDurationMs: values.WORKER_LOCK_DURATION_MS,
    /** Group commit: at most this many jobs' changes in one transaction (1: each on its own)... */
    workerBatchSize: values.WORKER_BATCH_SIZE,
    /** ...collected for at most this long. */
    workerBatchWindowMs: values.WORKER_BATCH_WINDOW_MS,
    queueName: values.QUEUE_NAME,
    /** BullMQ's Redis key prefix; with Redis Cluster it has a hash tag ({clerk-sync}) that keeps a queue in one slot. */
    queuePrefix: values.QUEUE_PREFIX ?? (cluster ? CLUSTER_QUEUE_PREFIX : DEFAULT_QUEUE_PREFIX),
    logLevel: values.LOG_LEVEL,
    /** Clerk Backend API, for backfill and reconcile. */
    clerkSecretKey: values.CLERK_SECRET_KEY,
    clerkApiUrl: values.CLERK_API_URL,
    /** How long one Backend API request may take to connect, to answer, and between body chunks. */
    clerkApiTimeoutMs: values.CLERK_API_TIMEOUT_MS,
    dashboard:
      values.DASHBOARD_USERNAME && values.DASHBOARD_PASSWORD
        ? Object.freeze({
            username: values.DASHBOARD_USERNAME,
            password: values.DASHBOARD_PASSWORD,
          })
        : undefined,
  };
});

export type Config = Readonly<z.output<typeof configSchema>>;

/** Reads and validates the environment; throws a ConfigError whose message names each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  return Object.freeze(parsed.data);
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
