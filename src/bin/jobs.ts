import type { Job } from 'bullmq';
import { exitWithError, loadConfigOrExit } from '../config.ts';
import { createLogger, scrub } from '../logger.ts';
import { retryAllFailedJobs, retryFailedJob } from '../queue/failed-jobs.ts';
import { createQueue, QUEUE_STATES, type WebhookJobData } from '../queue/queue.ts';
import { createProducerConnection, isReady, waitForRedis } from '../redis.ts';
import { describeRedisTarget, parseRedisUrl } from '../redis-url.ts';
import { parseCommandLine, runOrExit } from './run.ts';

const USAGE = `usage: npm run jobs -- <command>
  counts               jobs in the queue by state
  failed [--limit N]   failed jobs: id, event type, Clerk user id, attempts, reason (newest first, 50 by default)
  retry <job id>       run one failed job again, with all its attempts
  retry --all          run every failed job again, each with all its attempts`;

const REDIS_CONNECT_WAIT_MS = 5_000;

/** Inspects and replays the webhook queue: the same actions as the dashboard, from a terminal. */
await runOrExit(async () => {
  const { values, positionals } = parseCommandLine(
    USAGE,
    {
      all: { type: 'boolean' },
      limit: { type: 'string' },
    },
    { takesArguments: true },
  );
  const [command, jobId] = positionals;
  const config = loadConfigOrExit();
  const log = createLogger({ level: 'silent' });
  const redis = createProducerConnection(config.redisUrl, log);
  let lastError: Error | undefined;
  redis.on('error', (error: Error) => {
    lastError = error;
  });
  await waitForRedis(redis, REDIS_CONNECT_WAIT_MS);
  if (!isReady(redis)) {
    const target = describeRedisTarget(parseRedisUrl(config.redisUrl));
    exitWithError(
      `REDIS_URL: cannot connect to ${target}${lastError ? `: ${scrub(lastError.message)}` : ''}`,
    );
  }
  const queue = createQueue(config.queueName, config.queuePrefix, redis, log);
  try {
    switch (command) {
      case 'counts':
        printCounts(await queue.getJobCounts(...QUEUE_STATES));
        break;
      case 'failed':
        printFailed(await queue.getFailed(0, Number(values.limit ?? 50) - 1));
        break;
      case 'retry':
        if (values.all) {
          console.log(`retrying ${await retryAllFailedJobs(queue)} failed job(s)`);
        } else if (jobId) {
          if (!(await retryFailedJob(queue, jobId)))
            exitWithError(`no failed job with id ${jobId}`);
          console.log(`retrying ${jobId}`);
        } else {
          exitWithError(USAGE);
        }
        break;
      default:
        exitWithError(`unknown command ${command}\n${USAGE}`);
    }
  } finally {
    await queue.close();
    redis.disconnect();
  }
});

function printCounts(counts: Record<string, number>): void {
  for (const [state, count] of Object.entries(counts)) console.log(`${state.padEnd(12)} ${count}`);
}

function printFailed(jobs: Job<WebhookJobData>[]): void {
  if (jobs.length === 0) {
    console.log('no failed jobs');
    return;
  }
  console.log(['job id', 'event type', 'clerk user id', 'attempts', 'reason'].join('\t'));
  for (const job of jobs) {
    const clerkUserId = typeof job.data.event.data?.id === 'string' ? job.data.event.data.id : '-';
    const reason = scrub(job.failedReason ?? '').split('\n')[0];
    console.log([job.id, job.data.event.type, clerkUserId, job.attemptsMade, reason].join('\t'));
  }
}
