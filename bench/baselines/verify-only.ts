/** Baseline (a), the ceiling for any receiver: verify the Svix signature, answer 200. */
import { serveVerifiedWebhooks } from './server.ts';

serveVerifiedWebhooks(() => undefined);
