import { type DestinationStream, type Logger, pino, stdSerializers } from 'pino';

export type { Logger } from 'pino';

const EMAIL_PATTERN = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
const SECRET_PATTERN = /\b(whsec_|sk_live_|sk_test_)[A-Za-z0-9+/=_-]+/g;
const REDACTED_KEYS = new Set([
  'authorization',
  'cookie',
  'password',
  'secret',
  'email',
  'email_address',
  'email_addresses',
  'svix-signature',
]);

/** Removes email addresses and secrets from any string. */
export function scrub(text: string): string {
  return text.replace(EMAIL_PATTERN, '[email]').replace(SECRET_PATTERN, '$1[redacted]');
}

function scrubValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrub(value);
  if (value instanceof Error) return value;
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, depth + 1));
  const clean: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    clean[key] = REDACTED_KEYS.has(key.toLowerCase()) ? '[redacted]' : scrubValue(item, depth + 1);
  }
  return clean;
}

/**
 * One pino logger for the whole process. Every record, message and serialized error passes
 * through the scrubber, so an email address or a secret never reaches the log, whichever
 * code path (ours, a library's error message, a database error detail) produced it.
 */
export function createLogger(
  options: { level?: string; name?: string } = {},
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      name: options.name,
      base: { pid: process.pid },
      serializers: {
        err: (error: Error) => scrubValue(stdSerializers.err(error)),
        error: (error: Error) => scrubValue(stdSerializers.err(error)),
      },
      formatters: { log: (record) => scrubValue(record) as Record<string, unknown> },
      hooks: {
        logMethod(args, method) {
          method.apply(
            this,
            args.map((arg) => (typeof arg === 'string' ? scrub(arg) : arg)) as typeof args,
          );
        },
      },
    },
    destination,
  );
}
