import { expect, it } from 'vitest';
import { clerkId, sampleUserEvent } from '../../src/clerk/sample-events.ts';
import { isAcknowledged, send, userCreated } from '../support/load.ts';
import { health } from '../support/services.ts';
import {
  expectExactlyStored,
  startScenario,
  storedCounts,
  useRunningStack,
} from '../support/stack.ts';
import { OLD_SECRET, type SignOptions, signedHeaders } from '../support/svix.ts';

const REQUESTS = 1_500;
const CONCURRENCY = 16;
/** Bounds the health-check loop that runs alongside the flood (500 ms apart). */
const HEALTH_CHECKS_MAX = 240;
const MIB = 1024 * 1024;
/** Reproduce a failing run with FAULTS_SEED=<the seed it reported>. */
const SEED = Number(process.env.FAULTS_SEED ?? Math.floor(Math.random() * 2 ** 31));

const { stack, receiver } = useRunningStack();

interface Junk {
  label: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  /** The answers that are right for it; anything else (a 5xx above all) is a failure. */
  expected: number[];
}

interface JunkOutcome {
  junk: Junk;
  status: number | undefined;
  error: string | undefined;
}

/** mulberry32: a small seeded generator, so that a failing run can be replayed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function junkMaker(random: () => number) {
  const int = (max: number) => Math.floor(random() * max);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  const bytes = (length: number) => {
    const buffer = Buffer.allocUnsafe(length);
    for (let offset = 0; offset < Math.min(length, 4096); offset++) buffer[offset] = int(256);
    // Beyond 4 KiB the bytes repeat: just as random to the receiver, much cheaper to make.
    for (let offset = 4096; offset < length; offset += 4096) buffer.copy(buffer, offset, 0, 4096);
    return buffer;
  };
  /** Printable ASCII, what an HTTP header value may hold. */
  const text = (length: number) =>
    String.fromCharCode(...Array.from({ length }, () => 0x21 + int(0x7e - 0x21)));
  /** Latin-1 beyond ASCII too: obs-text, which Node accepts in header values. */
  const latin1 = (length: number) =>
    String.fromCharCode(
      ...Array.from({ length }, () => pick([0x21 + int(0x5e), 0xa0 + int(0x60)])),
    );
  const nowSeconds = () => Math.floor(Date.now() / 1000);
  const contentType = () =>
    pick([
      'application/json',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=xyz',
      'application/octet-stream',
      'image/png',
      '%%%/;;;',
      text(1 + int(40)),
    ]);
  const randomSvix = () => ({
    'svix-id': `msg_${text(8 + int(20)).replace(/[^A-Za-z0-9]/g, 'x')}`,
    'svix-timestamp': String(nowSeconds()),
    'svix-signature': `v1,${bytes(32).toString('base64')}`,
  });
  const post = (
    label: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    expected: number[],
  ): Junk => ({ label, method: 'POST', path: '/webhooks/clerk', headers, body, expected });
  const userEventBody = () => Buffer.from(JSON.stringify(sampleUserEvent('user.created')));
  /** A user event under random svix headers, one of which has one of these malformed values. */
  const malformed = (header: string, expected: number, values: () => string[]) => () => {
    const value = pick(values());
    const headers = { ...randomSvix(), [header]: value };
    return post(`a malformed ${header}`, headers, userEventBody(), [expected]);
  };
  /** `body` under a valid signature: made now with the secret configured unless told otherwise. */
  const signed = (
    label: string,
    body: Buffer,
    expected: number,
    options: SignOptions & { contentType?: string } = {},
  ) => {
    const headers = signedHeaders(body.toString('utf8'), options);
    headers['content-type'] = options.contentType ?? 'application/json';
    return post(label, headers, body, [expected]);
  };

  const makers: (() => Junk)[] = [
    () =>
      post(
        'random bytes, no svix headers',
        { 'content-type': contentType() },
        bytes(int(4096)),
        [400],
      ),
    () =>
      post(
        'random bytes, random svix headers',
        { 'content-type': contentType(), ...randomSvix() },
        bytes(int(4096)),
        [401],
      ),
    () =>
      post(
        'a user event under a forged signature',
        { 'content-type': 'application/json', ...randomSvix() },
        userEventBody(),
        [401],
      ),
    malformed('svix-id', 400, () => [
      'msg:1',
      '12345',
      'x'.repeat(129),
      'msg id',
      latin1(20),
      '../../etc/passwd',
      'msg_%00',
      '{}',
    ]),
    malformed('svix-timestamp', 401, () => [
      'yesterday',
      '-1',
      '0',
      '1e10',
      '99999999999999999999999999',
      '0x10',
      String(nowSeconds() + 3600),
      String(nowSeconds() - 3600),
      'NaN',
      latin1(10),
    ]),
    malformed('svix-signature', 401, () => [
      'v1,',
      'v1',
      ',,,',
      'v2,abc',
      `v1,${bytes(int(100)).toString('base64')}`,
      'v1,xx '.repeat(500),
      `v1,${'A'.repeat(8_000)}`,
      latin1(50),
      `v1a,${bytes(32).toString('base64')} v1,${text(44)}`,
    ]),
    () =>
      signed('random bytes under a valid signature', bytes(1 + int(4096)), 400, {
        contentType: contentType(),
      }),
    () =>
      signed(
        'valid signature, JSON that is not an event',
        Buffer.from(
          pick([
            '[1,2,3]',
            '"user.created"',
            'null',
            '42',
            '{"type":"user.created","object":"user","data":{}}',
            '{"type":"user.created","object":"event"}',
            '{"type":"user.created","object":"event","data":[]}',
            '{"object":"event","data":{}}',
            `{"type":"${'x'.repeat(200)}","object":"event","data":{}}`,
            '{"type":7,"object":"event","data":{}}',
            `${'['.repeat(5_000)}${']'.repeat(5_000)}`,
            '{"type":"user.created","object":"event","data":{}',
          ]),
        ),
        400,
      ),
    () =>
      signed(
        'valid signature, an event type not processed',
        Buffer.from(
          JSON.stringify({
            type: pick(['session.created', 'organization.updated', 'email.created', 'a.b']),
            object: 'event',
            data: { id: clerkId('sess') },
          }),
        ),
        200,
      ),
    () =>
      signed('a user event signed outside the 5-minute tolerance', userEventBody(), 401, {
        timestamp: new Date(Date.now() + pick([-1, 1]) * (6 + int(600)) * 60_000),
      }),
    () =>
      signed('a user event signed with a secret not configured', userEventBody(), 401, {
        secret: OLD_SECRET,
      }),
    () =>
      post(
        'one header over 16 KiB',
        { ...randomSvix(), 'x-padding': text(17 * 1024 + int(48 * 1024)) },
        userEventBody(),
        [431],
      ),
    () => {
      const headers: Record<string, string> = randomSvix();
      for (let index = 0; index < 200; index++) headers[`x-junk-${index}`] = text(100);
      return post('200 headers adding up over 16 KiB', headers, userEventBody(), [431]);
    },
    () =>
      post(
        'a header of 12 KiB, under the limit',
        { ...randomSvix(), 'x-padding': text(12 * 1024) },
        userEventBody(),
        [401],
      ),
    () =>
      post(
        'a body over 1 MiB',
        { ...randomSvix(), 'content-type': 'application/json' },
        bytes(MIB + 1 + int(64 * 1024)),
        [413],
      ),
    () => post('an empty body', randomSvix(), undefined, [401]),
    () => ({
      label: 'another method',
      method: pick(['GET', 'PUT', 'DELETE', 'PATCH']),
      path: '/webhooks/clerk',
      headers: randomSvix(),
      body: undefined,
      expected: [404],
    }),
    () => ({
      label: 'another path',
      method: 'POST',
      path: pick(['/webhooks', '/webhooks/clerk/x', '/%zz', `/${text(30).replace(/[?#%]/g, '')}`]),
      headers: randomSvix(),
      body: bytes(int(100)),
      expected: [400, 404],
    }),
  ];
  return () => (pick(makers) as () => Junk)();
}

async function sendJunk(baseUrl: string, junk: Junk): Promise<JunkOutcome> {
  try {
    const response = await fetch(`${baseUrl}${junk.path}`, {
      method: junk.method,
      headers: junk.headers,
      body: junk.body,
      signal: AbortSignal.timeout(15_000),
    });
    await response.arrayBuffer();
    return { junk, status: response.status, error: undefined };
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
    return { junk, status: undefined, error: `${error}${cause ? `: ${cause.message}` : ''}` };
  }
}

it('answers a flood of junk without a 5xx or a dropped connection, stores nothing and stays healthy', async () => {
  const scenario = startScenario('7 junk');
  const next = junkMaker(seededRandom(SEED));

  // Each request is made just before it is sent: making them all first would block this
  // process long enough for the receiver to close idle keep-alive connections that fetch
  // would then reuse.
  const outcomes: JunkOutcome[] = [];
  let started = 0;
  const flood = Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (started < REQUESTS) {
        started++;
        outcomes.push(await sendJunk(receiver.url, next()));
      }
    }),
  );
  // Meanwhile, the health check every 500 ms, as a load balancer would.
  const healthDuringFlood: number[] = [];
  let flooding = true;
  void flood.finally(() => {
    flooding = false;
  });
  for (let check = 0; flooding && check < HEALTH_CHECKS_MAX; check++) {
    healthDuringFlood.push((await health(receiver)).status);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await flood;

  const byLabel: Record<string, Record<string, number>> = {};
  for (const { junk: sent, status } of outcomes) {
    const answers = byLabel[sent.label] ?? {};
    const key = status === undefined ? 'error' : String(status);
    answers[key] = (answers[key] ?? 0) + 1;
    byLabel[sent.label] = answers;
  }
  const wrong = outcomes
    .filter(
      (outcome) => outcome.status === undefined || !outcome.junk.expected.includes(outcome.status),
    )
    .map(({ junk: sent, status, error }) => ({
      label: sent.label,
      status,
      error,
      expected: sent.expected,
    }));
  const wrongKinds = [...new Set(wrong.map((item) => JSON.stringify(item)))];
  expect({ seed: SEED, wrong: wrongKinds, count: wrong.length }).toEqual({
    seed: SEED,
    wrong: [],
    count: 0,
  });
  const serverErrors = outcomes.filter((outcome) => (outcome.status ?? 0) >= 500).length;
  const fetchErrors = outcomes.filter((outcome) => outcome.status === undefined).length;
  expect({ serverErrors, fetchErrors }).toEqual({ serverErrors: 0, fetchErrors: 0 });
  expect(healthDuringFlood.filter((status) => status !== 200)).toEqual([]);

  expect(receiver.isRunning()).toBe(true);
  const after = await health(receiver);
  expect(after).toMatchObject({
    status: 200,
    body: { status: 'ok', database: 'connected', redis: 'connected' },
  });
  expect((await stack.jobIds()).size).toBe(0);
  expect(await storedCounts(stack.db)).toEqual({
    users: 0,
    preferences: 0,
    usersWithoutPreferences: 0,
  });

  const user = clerkId('user');
  const valid = await send(receiver.url, userCreated(user));
  expect(isAcknowledged(valid)).toBe(true);
  await stack.waitUntilDrained(1, 20_000);
  await expectExactlyStored(stack.db, [user]);

  scenario.report({
    seed: SEED,
    requests: outcomes.length,
    serverErrors,
    fetchErrors,
    byLabel,
    healthChecksDuringFlood: healthDuringFlood.length,
    healthAfterMs: Math.round(after.ms),
    rowsFromJunk: 0,
  });
});
