import { describe, expect, it } from 'vitest';
import { LOGGED_TEXT_MAX_CHARS, scrub, scrubClientText } from '../src/logger.ts';
import { capturingLogger } from './support/logs.ts';

const EMAIL = 'jane.doe@example.com';
const SIGNING_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const API_KEY = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc';

/** Every sensitive value must be absent from every line, however the record was shaped. */
function expectNoneLeaked(lines: string[], ...sensitive: string[]): void {
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) {
    for (const value of sensitive) expect(line).not.toContain(value);
  }
}

describe('log redaction', () => {
  it('removes an email address from the message, keeping the rest of it', () => {
    const { log, lines, records } = capturingLogger();
    log.info(`welcome mail sent to ${EMAIL} for user_123`);
    expectNoneLeaked(lines, EMAIL);
    expect(records()[0]?.msg).toBe('welcome mail sent to [email] for user_123');
  });

  it('removes email addresses from nested objects and arrays', () => {
    const { log, lines } = capturingLogger();
    log.info({ user: { contact: { primary: EMAIL, others: [`<${EMAIL}>`] } } }, 'nested');
    expectNoneLeaked(lines, EMAIL);
    expect(lines[0]).toContain('[email]');
  });

  it("removes an email address from an error's message and stack, however the error is logged", () => {
    const { log, lines } = capturingLogger();
    log.error({ err: new Error(`duplicate key for ${EMAIL}`) }, 'as the err field');
    log.error({ error: new Error(`duplicate key for ${EMAIL}`) }, 'as the error field');
    log.error(new Error(`duplicate key for ${EMAIL}`));
    log.error(new Error(`duplicate key for ${EMAIL}`), 'as the first argument with a message');
    expect(lines).toHaveLength(4);
    expectNoneLeaked(lines, EMAIL);
  });

  it("removes an email address from an error's cause", () => {
    const { log, lines } = capturingLogger();
    const cause = new Error(`Key (email)=(${EMAIL}) already exists`);
    log.error({ err: new Error('insert failed', { cause }) }, 'write failed');
    expectNoneLeaked(lines, EMAIL);
    expect(lines[0]).toContain('already exists');
  });

  it('removes an email address from extra fields of an error (a database error detail)', () => {
    const { log, lines } = capturingLogger();
    const error = Object.assign(new Error('unique violation'), {
      detail: `Key (email)=(${EMAIL}) already exists.`,
    });
    log.error({ err: error }, 'write failed');
    expectNoneLeaked(lines, EMAIL);
    expect(lines[0]).toContain('unique violation');
  });

  it('removes whsec_ secrets and sk_live_ keys from messages and fields', () => {
    const { log, lines } = capturingLogger();
    log.warn(`rotating ${SIGNING_SECRET}, calling Clerk with ${API_KEY}`);
    log.info({ config: { signing: SIGNING_SECRET }, header: `Bearer ${API_KEY}` }, 'fields');
    expectNoneLeaked(lines, SIGNING_SECRET, API_KEY);
    expect(lines[0]).toContain('whsec_[redacted]');
    expect(lines[0]).toContain('sk_live_[redacted]');
  });

  it('redacts whole values under sensitive keys, whatever their case and depth', () => {
    const { log, lines, records } = capturingLogger();
    log.info(
      {
        email: 'not-even-an-address',
        password: 'hunter2',
        authorization: 'Basic YWRtaW46aHVudGVyMg==',
        headers: { Authorization: 'Bearer opaque-token' },
      },
      'request',
    );
    expectNoneLeaked(
      lines,
      'not-even-an-address',
      'hunter2',
      'YWRtaW46aHVudGVyMg==',
      'opaque-token',
    );
    expect(records()[0]).toMatchObject({
      email: '[redacted]',
      password: '[redacted]',
      authorization: '[redacted]',
      headers: { Authorization: '[redacted]' },
    });
  });

  it('removes sensitive values passed as interpolation arguments', () => {
    const { log, lines } = capturingLogger();
    log.info('user %s changed %j', EMAIL, { email: EMAIL, note: `by ${EMAIL}` });
    expectNoneLeaked(lines, EMAIL);
  });

  it('keeps the identifiers that make a line useful', () => {
    const { log, records } = capturingLogger();
    log
      .child({ jobId: 'job-1' })
      .info(
        { clerkUserId: 'user_2abc', svixId: 'msg_2xyz', eventType: 'user.created', email: EMAIL },
        'event processed',
      );
    expect(records()[0]).toMatchObject({
      jobId: 'job-1',
      clerkUserId: 'user_2abc',
      svixId: 'msg_2xyz',
      eventType: 'user.created',
      email: '[redacted]',
      msg: 'event processed',
    });
  });

  it('scrubs the bindings of child loggers', () => {
    const { log, lines, records } = capturingLogger();
    log
      .child({ contact: EMAIL, token: SIGNING_SECRET, clerkUserId: 'user_child' })
      .info('from a child');
    expectNoneLeaked(lines, EMAIL, SIGNING_SECRET);
    expect(records()[0]).toMatchObject({ contact: '[email]', clerkUserId: 'user_child' });
  });

  it('removes every address of a run in which one ends where the next begins', () => {
    expect(scrub('a@b.com.x@y.com and <c.d+e@sub.example.co.uk>')).toBe('[email] and <[email]>');
    expect(scrub('user@localhost, @example.com, user@, a@b.c')).toBe(
      'user@localhost, @example.com, user@, a@b.c',
    );
  });

  it('cuts a client text to LOGGED_TEXT_MAX_CHARS after scrubbing it, saying how much was cut', () => {
    const url = `/${EMAIL}/${'a'.repeat(1_000)}`;
    const logged = scrubClientText(url);
    expect(logged).not.toContain(EMAIL);
    expect(logged).toBe(
      `${`/[email]/${'a'.repeat(1_000)}`.slice(0, LOGGED_TEXT_MAX_CHARS)}…[${'/[email]/'.length + 1_000 - LOGGED_TEXT_MAX_CHARS} more characters]`,
    );
    expect(scrubClientText('/short')).toBe('/short');
  });

  it('leaves large request bodies alone instead of copying them', () => {
    const { log, lines } = capturingLogger();
    const body = Buffer.alloc(1024 * 1024, 'a');
    log.info({ req: { body } }, 'request with a body');
    expect(lines).toHaveLength(1);
  });
});
