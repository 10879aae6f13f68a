import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clerkId } from '../src/clerk/sample-events.ts';
import { ConfigError } from '../src/errors.ts';
import { startReceiver } from '../src/services/receiver.ts';
import { startWorker, type WorkerProcess } from '../src/services/worker.ts';
import { SignatureVerifier, type SvixHeaders } from '../src/webhooks/signature.ts';
import { resolveSigningSecrets } from '../src/webhooks/signing-secrets.ts';
import { PROJECT_ROOT, runNpmScript } from './support/cli.ts';
import { testConfig } from './support/config.ts';
import { countRows } from './support/database.ts';
import { useTestDatabase } from './support/hooks.ts';
import { capturingLogger } from './support/logs.ts';
import { REDIS_URL } from './support/queue.ts';
import { type InProcessReceiver, startInProcessReceiver } from './support/receiver.ts';
import { storedUser } from './support/stored-users.ts';
import { signedHeaders, TEST_SECRET } from './support/svix.ts';
import { waitFor } from './support/wait.ts';

const run = promisify(execFile);

const db = useTestDatabase();
let receiver: InProcessReceiver;
let worker: WorkerProcess;
let endpoint: string;
let tmp: string;
const { log } = capturingLogger('silent');

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'clerk-sync-webhook-send-'));
  receiver = await startInProcessReceiver({ DATABASE_URL: db.url }, { log });
  worker = await startWorker(receiver.config, log, { services: db });
  endpoint = `${receiver.url}/webhooks/clerk`;
});

afterAll(async () => {
  await worker?.stop();
  await receiver?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** `npm run -s webhook:send -- …` with the test's signing secret unless `env` sets another. */
function webhookSend(args: string[], env: Record<string, string | undefined> = {}) {
  return runNpmScript('webhook:send', args, {
    NODE_ENV: 'test',
    CLERK_WEBHOOK_SIGNING_SECRET: TEST_SECRET,
    ...env,
  });
}

async function emailOf(clerkUserId: string): Promise<string | undefined> {
  return (await storedUser(db, clerkUserId))?.email;
}

describe('npm run webhook:send', () => {
  it('signs a sample user.created and posts it, and the user appears', async () => {
    const id = clerkId('user');
    const email = `send.${id.slice(5, 13).toLowerCase()}@example.com`;

    const args = ['user.created', '--id', id, '--email', email, '--url', endpoint];
    const printed = await webhookSend(args);

    expect(printed.code, printed.output).toBe(0);
    expect(printed.stdout).toMatch(/user\.created for user_\S+ \(svix-id msg_\S+\) → 202/);
    expect(await waitFor(() => emailOf(id), 10_000, 'the user row')).toBe(email);
    expect(await countRows(db, 'user_preferences')).toBe(await countRows(db, 'users'));

    const deleted = await webhookSend(['user.deleted', '--id', id, '--url', endpoint]);
    expect(deleted.code, deleted.output).toBe(0);
    await waitFor(async () => (await emailOf(id)) === undefined, 10_000, 'the user to go');
  });

  it('exits non-zero when the receiver rejects its signature', async () => {
    const other = `whsec_${Buffer.from('not the receiver secret').toString('base64')}`;
    const attempt = await webhookSend(['user.created', '--url', endpoint], {
      CLERK_WEBHOOK_SIGNING_SECRET: other,
    });
    expect(attempt).toMatchObject({ code: 1, stdout: expect.stringMatching(/→ 401/) });
  });

  it('signs with the development secret file of the directory it runs in', async () => {
    const cwd = await mkdtemp(join(tmp, 'dev-'));
    const [secret] = resolveSigningSecrets(
      testConfig({ NODE_ENV: 'development', CLERK_WEBHOOK_SIGNING_SECRET: undefined }),
      join(cwd, '.dev-webhook-secret'),
    );
    const devReceiver = await startReceiver(
      testConfig({
        DATABASE_URL: db.url,
        REDIS_URL,
        QUEUE_NAME: receiver.config.queueName,
        CLERK_WEBHOOK_SIGNING_SECRET: secret,
      }),
      log,
    );
    try {
      const id = clerkId('user');
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${devReceiver.port}/api/v1/health`)).ok,
        5_000,
        'dev receiver health',
      );
      const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'development' };
      delete env.CLERK_WEBHOOK_SIGNING_SECRET;

      const url = `http://127.0.0.1:${devReceiver.port}/webhooks/clerk`;
      const script = join(PROJECT_ROOT, 'src/bin/webhook-send.ts');
      const { stdout } = await run(
        process.execPath,
        [script, 'user.created', '--id', id, '--url', url],
        { cwd, env },
      );

      expect(stdout).toMatch(/→ 202/);
      expect(await waitFor(() => emailOf(id), 10_000, 'the user row')).toMatch(/@example\.com$/);
    } finally {
      await devReceiver.stop();
    }
  });
});

describe('resolveSigningSecrets', () => {
  const development = () =>
    testConfig({ NODE_ENV: 'development', CLERK_WEBHOOK_SIGNING_SECRET: undefined });

  it('uses the configured secrets, newest first, when there are some', () => {
    const config = testConfig({ CLERK_WEBHOOK_SIGNING_SECRET: `${TEST_SECRET}, whsec_b2xk` });
    expect(resolveSigningSecrets(config, join(tmp, 'unused'))).toEqual([TEST_SECRET, 'whsec_b2xk']);
  });

  it('creates a development secret once, readable by its owner only, and then reuses it', async () => {
    const file = join(await mkdtemp(join(tmp, 'secret-')), '.dev-webhook-secret');

    const [created] = resolveSigningSecrets(development(), file);
    const [again] = resolveSigningSecrets(development(), file);

    expect(created).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(again).toBe(created);
    expect(await readFile(file, 'utf8')).toBe(`${created}\n`);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const body = '{"type":"user.created"}';
    const headers = signedHeaders(body, { secret: created, svixId: 'msg_dev' });
    const svixHeaders: SvixHeaders = {
      'svix-id': 'msg_dev',
      'svix-timestamp': headers['svix-timestamp'] ?? '',
      'svix-signature': headers['svix-signature'] ?? '',
    };
    expect(() =>
      new SignatureVerifier([created ?? '']).verify(Buffer.from(body), svixHeaders),
    ).not.toThrow();
  });

  it('refuses a development secret file that does not hold a whsec_ secret', async () => {
    const file = join(await mkdtemp(join(tmp, 'bad-')), '.dev-webhook-secret');
    await writeFile(file, 'not a secret\n');
    expect(() => resolveSigningSecrets(development(), file)).toThrow(ConfigError);
  });

  it('requires a configured secret in production and creates no file', async () => {
    const file = join(await mkdtemp(join(tmp, 'prod-')), '.dev-webhook-secret');
    const production = testConfig({
      NODE_ENV: 'production',
      CLERK_WEBHOOK_SIGNING_SECRET: undefined,
    });

    expect(() => resolveSigningSecrets(production, file)).toThrow(ConfigError);
    expect(() => resolveSigningSecrets(production, file)).toThrow(/CLERK_WEBHOOK_SIGNING_SECRET/);
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
