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

function isPlainObject(value: object): boolean {
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * Scrubs strings inside plain objects and arrays. Anything else (a request, a Buffer, an
 * Error) is left to its serializer, whose output is plain and comes back through here.
 */
function scrubValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrub(value);
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, depth + 1));
  if (!isPlainObject(value)) return value;
  const clean: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    clean[key] = REDACTED_KEYS.has(key.toLowerCase()) ? '[redacted]' : scrubValue(item, depth + 1);
  }
  return clean;
}

function serializeError(error: Error): unknown {
  return scrubValue({ ...stdSerializers.err(error) });
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
      serializers: { err: serializeError, error: serializeError },
      // Every top-level field, child logger bindings and serialized errors included, passes
      // through the scrubber on its way out.
      redact: { paths: ['*'], censor: (value) => scrubValue(value) },
      hooks: {
        logMethod(args, method) {
          const [first, second] = args;
          // Given an error and no message, pino would copy the error's raw message into msg.
          if (first instanceof Error && typeof second !== 'string') {
            method.apply(this, [first, scrub(first.message)]);
            return;
          }
          const clean = args.map((arg, index) =>
            index > 0 && arg instanceof Error ? scrub(String(arg)) : scrubValue(arg),
          );
          method.apply(this, clean as typeof args);
        },
      },
    },
    destination,
  );
}
