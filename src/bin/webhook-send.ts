import { Webhook } from 'svix';
import { clerkId, sampleDeletedEvent, sampleUserEvent } from '../clerk/sample-events.ts';
import { exitWithError, loadConfigOrExit } from '../config.ts';
import { resolveSigningSecrets } from '../webhooks/signing-secrets.ts';
import { parseCommandLine, runOrExit } from './run.ts';

const USAGE = `usage: npm run webhook:send -- <user.created|user.updated|user.deleted> [options]
  --id <user_…>        Clerk user id (default: a new random one)
  --email <address>    primary email address (default: <id>@example.com)
  --no-email           send a user without any email address
  --timezone <name>    public_metadata.timezone, an IANA name
  --updated-at <ms>    data.updated_at in milliseconds since the epoch (default: now)
  --url <url>          receiver endpoint (default: http://127.0.0.1:$PORT/webhooks/clerk)`;

/** Signs a realistic Clerk event with the configured (or development) secret and posts it to the receiver. */
await runOrExit(async () => {
  const { values, positionals } = parseCommandLine(
    USAGE,
    {
      id: { type: 'string' },
      email: { type: 'string' },
      'no-email': { type: 'boolean' },
      timezone: { type: 'string' },
      'updated-at': { type: 'string' },
      url: { type: 'string' },
    },
    { takesArguments: true },
  );
  const type = positionals[0];
  const config = loadConfigOrExit();
  const id = values.id ?? clerkId('user');
  let event: object;
  if (type === 'user.created' || type === 'user.updated') {
    event = sampleUserEvent(type, {
      id,
      email: values['no-email'] ? null : values.email,
      timezone: values.timezone,
      updatedAt: values['updated-at'] ? Number(values['updated-at']) : undefined,
    });
  } else if (type === 'user.deleted') {
    event = sampleDeletedEvent(id);
  } else {
    exitWithError(`unknown event type ${type}\n${USAGE}`);
  }

  const [secret] = resolveSigningSecrets(config);
  if (!secret) exitWithError('no signing secret');
  const body = JSON.stringify(event);
  const svixId = `msg_${clerkId('x').slice(2)}`;
  const timestamp = new Date();
  const url = values.url ?? `http://127.0.0.1:${config.port}/webhooks/clerk`;
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'svix-id': svixId,
      'svix-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
      'svix-signature': new Webhook(secret).sign(svixId, timestamp, body),
    },
    body,
  }).catch((error: Error) => exitWithError(`cannot reach ${url}: ${error.cause ?? error.message}`));
  console.log(
    `${type} for ${id} (svix-id ${svixId}) → ${response.status} ${await response.text()}`,
  );
  if (!response.ok) process.exit(1);
});
