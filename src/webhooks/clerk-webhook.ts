import express, { type ErrorRequestHandler, type Request, type Response, Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../logger.ts';
import type { ReceiverMetrics } from '../metrics.ts';
import { type ClerkEvent, isUserEventType, toJobEvent, type WebhookJobData } from '../queue.ts';
import { withTimeout } from '../timeout.ts';
import type { EnqueueResult } from './enqueue.ts';
import { type SignatureVerifier, type SvixHeaders, WebhookVerificationError } from './signature.ts';

export const MAX_BODY_BYTES = 1024 * 1024;
/** Svix counts only a 2xx within 15 s; a Redis that hangs gets a 503 well before that. */
export const ENQUEUE_TIMEOUT_MS = 4_000;

/** Svix message ids (`msg_…`); BullMQ job ids may not contain ':' nor be plain integers. */
const SVIX_ID_PATTERN = /^(?!\d+$)[A-Za-z0-9_.-]{1,128}$/;

const eventSchema = z
  .object({
    type: z.string().min(1).max(100),
    object: z.literal('event'),
    data: z.record(z.string(), z.unknown()),
  })
  .loose();

export interface ClerkWebhookDependencies {
  verifier: SignatureVerifier;
  enqueue: (data: WebhookJobData) => Promise<EnqueueResult>;
  metrics: ReceiverMetrics;
  log: Logger;
}

/**
 * POST /webhooks/clerk: raw body → Svix signature → event shape → one job in Redis → 2xx.
 * It never touches the database; every answer to a client mistake is a 4xx.
 */
export function clerkWebhookRouter(deps: ClerkWebhookDependencies): Router {
  const router = Router();
  router.post(
    '/webhooks/clerk',
    express.raw({ type: () => true, limit: MAX_BODY_BYTES }),
    async (request: Request, response: Response) => {
      const reject = (
        status: number,
        outcome: Parameters<ReceiverMetrics['received']>[1],
        error: string,
        type?: string,
      ) => {
        deps.metrics.received(type, outcome);
        response.status(status).json({ error });
      };

      const headers = svixHeaders(request);
      if (!headers)
        return reject(
          400,
          'missing_headers',
          'missing svix-id, svix-timestamp or svix-signature header',
        );
      if (!SVIX_ID_PATTERN.test(headers['svix-id']))
        return reject(400, 'bad_request', 'malformed svix-id header');

      const body: Buffer = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      try {
        deps.verifier.verify(body, headers);
      } catch (error) {
        if (!(error instanceof WebhookVerificationError)) throw error;
        deps.log.warn(
          { svixId: headers['svix-id'], reason: error.message },
          'webhook signature rejected',
        );
        return reject(401, 'invalid_signature', 'invalid signature');
      }

      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        return reject(400, 'invalid_payload', 'body is not JSON');
      }
      const event = eventSchema.safeParse(parsed);
      if (!event.success) return reject(400, 'invalid_payload', 'body is not a Clerk event object');

      const type = event.data.type;
      if (!isUserEventType(type)) {
        deps.metrics.received(type, 'ignored');
        response.status(200).json({ status: 'ignored', type });
        return;
      }

      const job: WebhookJobData = {
        svixId: headers['svix-id'],
        receivedAt: Date.now(),
        event: toJobEvent(event.data as ClerkEvent),
      };
      let result: EnqueueResult;
      try {
        result = await withTimeout(deps.enqueue(job), ENQUEUE_TIMEOUT_MS, 'enqueue');
      } catch (error) {
        deps.log.error(
          { err: error, svixId: job.svixId },
          'could not enqueue webhook; answering 503',
        );
        response.set('Retry-After', '5');
        return reject(503, 'unavailable', 'queue unavailable, retry later', type);
      }
      deps.metrics.received(type, result);
      response.status(202).json({ status: result, id: job.svixId });
    },
  );
  // The body parser's refusals (too large, bad encoding) skip the handler above; they are
  // counted here and answered by the app's error handler as before.
  router.use('/webhooks/clerk', ((error, _request, _response, next) => {
    const status: unknown = error?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      deps.metrics.received(undefined, status === 413 ? 'too_large' : 'bad_request');
    }
    next(error);
  }) satisfies ErrorRequestHandler);
  return router;
}

function svixHeaders(request: Request): SvixHeaders | undefined {
  const id = request.get('svix-id');
  const timestamp = request.get('svix-timestamp');
  const signature = request.get('svix-signature');
  if (!id || !timestamp || !signature) return undefined;
  return { 'svix-id': id, 'svix-timestamp': timestamp, 'svix-signature': signature };
}
