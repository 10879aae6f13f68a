import { type DestinationStream, type Logger, pino, stdSerializers } from 'pino';

export type { Logger } from 'pino';

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

/** What is logged of a URL or a header value at most; the rest is cut and counted. */
export const LOGGED_TEXT_MAX_CHARS = 300;

/**
 * Removes email addresses and secrets from any string, in time linear in its length: the
 * secret pattern has nothing to backtrack into, and emails are found by their `@`.
 */
export function scrub(text: string): string {
  return redactEmails(text).replace(SECRET_PATTERN, '$1[redacted]');
}

/** Scrubs a client-supplied text (a URL, a header) and keeps at most LOGGED_TEXT_MAX_CHARS of it. */
export function scrubClientText(text: string): string {
  const clean = scrub(text);
  if (clean.length <= LOGGED_TEXT_MAX_CHARS) return clean;
  const cut = clean.length - LOGGED_TEXT_MAX_CHARS;
  return `${clean.slice(0, LOGGED_TEXT_MAX_CHARS)}…[${cut} more characters]`;
}

const isLetter = (code: number) => (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
const isDigit = (code: number) => code >= 48 && code <= 57;
/** `[A-Za-z0-9.-]` */
const isDomainChar = (code: number) =>
  isLetter(code) || isDigit(code) || code === 46 || code === 45;
/** `[A-Za-z0-9._%+-]` */
const isLocalChar = (code: number) =>
  isDomainChar(code) || code === 95 || code === 37 || code === 43;
const DOT = 46;

/**
 * Replaces what `[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}` would match with [email]. That
 * regular expression backtracks quadratically over a long run of letters (a 15,000-character URL
 * held the event loop for 0.8 s), so each `@` is expanded by hand instead: the scans stop at the
 * neighbouring `@`s, which neither side may contain, so every character is visited a bounded
 * number of times. Overlapping matches merge, so nothing between them survives.
 */
function redactEmails(text: string): string {
  let result = '';
  let copiedUpTo = 0;
  let pendingStart = -1;
  let pendingEnd = -1;
  for (let at = text.indexOf('@'); at !== -1; at = text.indexOf('@', at + 1)) {
    let start = at;
    while (start > 0 && isLocalChar(text.charCodeAt(start - 1))) start--;
    if (start === at) continue;
    const end = emailDomainEnd(text, at);
    if (end === undefined) continue;
    if (pendingEnd >= start) {
      pendingEnd = end;
      continue;
    }
    if (pendingStart >= 0) {
      result += `${text.slice(copiedUpTo, pendingStart)}[email]`;
      copiedUpTo = pendingEnd;
    }
    pendingStart = start;
    pendingEnd = end;
  }
  if (pendingStart < 0) return text;
  return `${result}${text.slice(copiedUpTo, pendingStart)}[email]${text.slice(pendingEnd)}`;
}

/** Where the longest `[A-Za-z0-9.-]+\.[A-Za-z]{2,}` after the `@` at `at` ends, if there is one. */
function emailDomainEnd(text: string, at: number): number | undefined {
  let end = at + 1;
  while (end < text.length && isDomainChar(text.charCodeAt(end))) end++;
  // Walk back over letter runs: the match ends in a run of two or more letters after a dot
  // that is not the domain's first character.
  while (end > at + 1) {
    let runStart = end;
    while (runStart > at + 1 && isLetter(text.charCodeAt(runStart - 1))) runStart--;
    const dot = runStart - 1;
    if (end - runStart >= 2 && dot > at + 1 && text.charCodeAt(dot) === DOT) return end;
    end = runStart === end ? end - 1 : runStart;
  }
  return undefined;
}

/**
 * Scrubs strings inside plain objects and arrays. Anything else (a request, a Buffer, an
 * Error) is left to its serializer, whose output is plain and comes back through here.
 */
function scrubValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrub(value);
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, depth + 1));
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return value;
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
      // through the scrubber on its way out. The hook below cannot do without it: pino applies
      // no formatter to a child's bindings, and its censor sees no key names, which is why the
      // hook still redacts the merging object's sensitive keys (a password is no email address).
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
