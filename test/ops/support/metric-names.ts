import { Redis } from 'ioredis';
import { createLogger } from '../../../src/logger.ts';
import { createReceiverMetrics, createWorkerMetrics } from '../../../src/metrics.ts';
import { watchRedisDurability } from '../../../src/redis.ts';
import { inspectQueue, REDIS_URL, removeQueue, uniqueQueueName } from '../../support/queue.ts';

const HISTOGRAM_SERIES = ['_bucket', '_sum', '_count'];

/** Every series name the receiver and the worker export, from their real registries. */
export async function exportedMetricNames(): Promise<Set<string>> {
  const queue = inspectQueue(uniqueQueueName());
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  const durability = watchRedisDurability(redis, createLogger({ level: 'silent' }), 'unused');
  try {
    const checks = { database: async () => true, redis: async () => true };
    const registries = [
      createReceiverMetrics(queue, redis, checks, durability).registry,
      createWorkerMetrics(checks).registry,
    ];
    const names = new Set<string>();
    for (const registry of registries) {
      for (const metric of registry.getMetricsAsArray()) {
        const { name, type } = metric as unknown as { name: string; type: string };
        names.add(name);
        if (type === 'histogram') for (const suffix of HISTOGRAM_SERIES) names.add(name + suffix);
      }
    }
    return names;
  } finally {
    durability.stop();
    redis.disconnect();
    await removeQueue(queue);
  }
}

/** The clerk-sync metric names a PromQL expression reads. */
export function metricNamesIn(expr: string): string[] {
  return [...new Set(expr.match(/\bclerk_sync_[a-z0-9_]+/g) ?? [])];
}
