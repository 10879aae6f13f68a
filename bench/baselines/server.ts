import express from 'express';
import { Webhook } from 'svix';

/**
 * What the baselines share: Express 5, the raw body, Svix's own `verify`, then `afterVerify`,
 * then 200. Configured like the receiver, by PORT and CLERK_WEBHOOK_SIGNING_SECRET.
 */
export function serveVerifiedWebhooks(
  afterVerify: (body: Buffer, svixId: string) => unknown,
): void {
  const webhook = new Webhook(process.env.CLERK_WEBHOOK_SIGNING_SECRET ?? '');
  const app = express();
  app.disable('x-powered-by');
  app.get('/api/v1/health', (_request, response) => {
    response.json({ status: 'ok' });
  });
  app.post(
    '/webhooks/clerk',
    express.raw({ type: () => true, limit: '1mb' }),
    async (request, response) => {
      const svixId = request.get('svix-id') ?? '';
      try {
        webhook.verify(request.body, {
          'svix-id': svixId,
          'svix-timestamp': request.get('svix-timestamp') ?? '',
          'svix-signature': request.get('svix-signature') ?? '',
        });
      } catch {
        response.status(401).json({ error: 'invalid signature' });
        return;
      }
      await afterVerify(request.body, svixId);
      response.status(200).json({ status: 'ok' });
    },
  );
  app.listen(Number(process.env.PORT), '127.0.0.1');
}
