import { randomUUID } from 'node:crypto';
import { Webhook } from 'svix';

export const TEST_SECRET = `whsec_${Buffer.from('clerk-sync test secret 0123456789').toString('base64')}`;
export const OLD_SECRET = `whsec_${Buffer.from('clerk-sync old secret 9876543210').toString('base64')}`;

export function newSvixId(): string {
  return `msg_${randomUUID().replaceAll('-', '')}`;
}

export interface SignOptions {
  secret?: string;
  svixId?: string;
  timestamp?: Date;
}

/** Headers for a delivery of `body` signed the way Svix signs it, with the svix library. */
export function signedHeaders(body: string, options: SignOptions = {}): Record<string, string> {
  const svixId = options.svixId ?? newSvixId();
  const timestamp = options.timestamp ?? new Date();
  return {
    'content-type': 'application/json',
    'svix-id': svixId,
    'svix-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
    'svix-signature': new Webhook(options.secret ?? TEST_SECRET).sign(svixId, timestamp, body),
  };
}

/** POSTs a signed delivery; returns the response. */
export async function deliver(
  baseUrl: string,
  event: unknown,
  options: SignOptions = {},
): Promise<Response> {
  const body = JSON.stringify(event);
  return fetch(`${baseUrl}/webhooks/clerk`, {
    method: 'POST',
    headers: signedHeaders(body, options),
    body,
  });
}
