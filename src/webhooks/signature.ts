import { Webhook, WebhookVerificationError } from 'svix';

export { WebhookVerificationError } from 'svix';

export interface SvixHeaders {
  'svix-id': string;
  'svix-timestamp': string;
  'svix-signature': string;
}

/**
 * Checks a delivery's Svix signature against every configured secret, so an endpoint secret
 * can be rotated without downtime: during the rotation both the new and the old secret are
 * configured and a delivery signed with either is accepted. Svix's own Webhook class does the
 * timing-safe comparison, the several-signatures header and the 5-minute timestamp tolerance.
 */
export class SignatureVerifier {
  readonly #webhooks: readonly Webhook[];

  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new Error('at least one webhook signing secret is required');
    this.#webhooks = secrets.map((secret) => new Webhook(secret));
  }

  /** Throws WebhookVerificationError unless one of the secrets signed this exact body. */
  verify(rawBody: Buffer, headers: SvixHeaders): void {
    let lastError: unknown;
    for (const webhook of this.#webhooks) {
      try {
        webhook.verify(rawBody, { ...headers });
        return;
      } catch (error) {
        if (!(error instanceof WebhookVerificationError)) throw error;
        lastError = error;
      }
    }
    throw lastError;
  }
}
