import express, { type ErrorRequestHandler, type Request, type Response, Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../logger.ts';
import type { ReceiverMetrics, WebhookOutcome } from '../metrics.ts';
import { isUserEventType, type WebhookJobData } from '../queue/queue.ts';
import { withTimeout } from '../timeout.ts';
import type { EnqueueResult } from './enqueue.ts';
import { toJobEvent } from './job-event.ts';
import { type SignatureVerifier, type SvixHeaders, WebhookVerificationError } from './signature.ts';

export const MAX_BODY_BYTES = 1024 * 1024;
/** Svix counts only a 2xx within 15 s; a Redis that hangs gets a 503 well before that. */
export const ENQUEUE_TIMEOUT_MS = 4_000;
/** Svix's own tolerance, both ways; checked here too, so a stale delivery's body is never read. */
const TIMESTAMP_TOLERANCE_SECONDS = 5 * 60;

/**
 * A Svix message id: `msg_` and a base62 KSUID (27 characters; bounded well above that). It
 * becomes the BullMQ job id, so it must not be able to name one of BullMQ's own keys (`meta`,
 * `events`, `wait`…), hold a ':' or be a plain integer: the `msg_` prefix rules all of them out.
 */
const SVIX_ID_PATTERN = /^msg_[A-Za-z0-9]{1,64}$/;
/** Seconds since the epoch, as Svix sends them. */
const SVIX_TIMESTAMP_PATTERN = /^\d{1,12}$/;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * What the receiver reads of an event, and no more: toJobEvent picks the fields it keeps from
 * `data`, so checking `data` key by key and copying the envelope's other keys (as a record and
 * `.loose()` did) cost a dozen times as much and kept nothing more.
 */
const eventSchema = z.object({
  type: z.string().min(1).max(100),
  object: z.literal('event'),
  data: z.custom<Record<string, unknown>>(isObject),
  timestamp: z.unknown().optional(),
});

export interface ClerkWebhookDependencies {
  verifier: SignatureVerifier;
  enqueue: (data: WebhookJobData) => Promise<EnqueueResult>;
  metrics: ReceiverMetrics;
  log: Logger;
}

interface Refusal {
  status: number;
  outcome: WebhookOutcome;
  error: string;
  /** For a refused signature, logged: the delivery, and why when `error` does not say it all. */
  svixId?: string;
  reason?: string;
}

/**
 * POST /webhooks/clerk: headers → raw body → Svix signature → event shape → one job in Redis →
 * 2xx. Everything the headers alone can refuse is refused before a byte of the body is read, so
 * a junk request costs no inflating and no hashing. It never touches the database; every answer
 * to a client mistake is a 4xx.
 */
export function clerkWebhookRouter(deps: ClerkWebhookDependencies): Router {
  const router = Router();
  const refuse = (response: Response, refusal: Refusal, type?: string) => {
    if (refusal.outcome === 'invalid_signature') {
      // The reason (stale timestamp, no matching signature) and the delivery, never the body.
      deps.log.warn(
        { svixId: refusal.svixId, reason: refusal.reason ?? refusal.error },
        'webhook signature rejected',
      );
    }
    deps.metrics.received(type, refusal.outcome);
    response.status(refusal.status).json({ error: refusal.error });
  };
  const invalidPayload = (response: Response, error: string) =>
    refuse(response, { status: 400, outcome: 'invalid_payload', error });

  router.post(
    '/webhooks/clerk',
    (request: Request, response: Response, next) => {
      const checked = checkHeaders(request);
      if ('status' in checked) return refuse(response, checked);
      response.locals.svixHeaders = checked;
      next();
    },
    // Svix never compresses; anything encoded was refused above, and is not inflated here either.
    express.raw({ type: () => true, limit: MAX_BODY_BYTES, inflate: false }),
    async (request: Request, response: Response) => {
      const headers: SvixHeaders = response.locals.svixHeaders;
      const body: Buffer = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      try {
        deps.verifier.verify(body, headers);
      } catch (error) {
        if (!(error instanceof WebhookVerificationError)) throw error;
        return refuse(response, {
          status: 401,
          outcome: 'invalid_signature',
          error: 'invalid signature',
          svixId: headers['svix-id'],
          reason: error.message,
        });
      }

      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        return invalidPayload(response, 'body is not JSON');
      }
      const event = eventSchema.safeParse(parsed);
      if (!event.success) return invalidPayload(response, 'body is not a Clerk event object');

      const type = event.data.type;
      if (!isUserEventType(type)) {
        deps.metrics.received(type, 'ignored');
        response.status(200).json({ status: 'ignored', type });
        return;
      }

      const job: WebhookJobData = {
        svixId: headers['svix-id'],
        receivedAt: Date.now(),
        event: toJobEvent(event.data),
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
        return refuse(
          response,
          { status: 503, outcome: 'unavailable', error: 'queue unavailable, retry later' },
          type,
        );
      }
      deps.metrics.received(type, result);
      response.status(202).json({ status: result, id: job.svixId });
    },
  );
  // The body parser's refusals (too large, a body cut short) skip the handler above; they are
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

/**
 * What the headers alone decide: the encoding, the Svix headers' presence and shape, and the
 * timestamp's tolerance. The signature itself needs the body, and is checked after it is read.
 */
function checkHeaders(request: Request): SvixHeaders | Refusal {
  const encoding = request.get('content-encoding');
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    return {
      status: 415,
      outcome: 'bad_request',
      error: 'content-encoding is not supported; send the body as it is',
    };
  }
  const id = request.get('svix-id');
  const timestamp = request.get('svix-timestamp');
  const signature = request.get('svix-signature');
  if (!id || !timestamp || !signature) {
    return {
      status: 400,
      outcome: 'missing_headers',
      error: 'missing svix-id, svix-timestamp or svix-signature header',
    };
  }
  if (!SVIX_ID_PATTERN.test(id)) {
    return { status: 400, outcome: 'bad_request', error: 'malformed svix-id header' };
  }
  const ageSeconds = Math.floor(Date.now() / 1000) - Number(timestamp);
  if (
    !SVIX_TIMESTAMP_PATTERN.test(timestamp) ||
    Math.abs(ageSeconds) > TIMESTAMP_TOLERANCE_SECONDS
  ) {
    return {
      status: 401,
      outcome: 'invalid_signature',
      error: 'svix-timestamp is not within 5 minutes of now',
      svixId: id,
    };
  }
  return { 'svix-id': id, 'svix-timestamp': timestamp, 'svix-signature': signature };
}
