import express, { type ErrorRequestHandler, type Express } from 'express';
import { pinoHttp } from 'pino-http';
import type { Registry } from 'prom-client';
import { type Logger, scrubClientText } from '../logger.ts';
import { type HealthChecks, healthRouter } from './health.ts';

export interface AppOptions {
  log: Logger;
  health: HealthChecks;
  /** Served at /metrics; left out when metrics have a listener of their own. */
  metrics?: Registry;
  routers?: express.Router[];
}

/** Polled every few seconds by Prometheus and probes: not worth a log line each. */
const QUIET_PATHS = new Set(['/metrics', '/api/v1/health', '/livez', '/readyz']);

/** The Express app shared by the receiver and the worker's small status server. */
export function createApp(options: AppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  // A line per request, at info: below that level pino-http would still build a child logger
  // for every request and log nothing, so it is left out.
  if (options.log.isLevelEnabled('info')) app.use(requestLogger(options.log));
  app.use(healthRouter(options.health));
  if (options.metrics) app.get('/metrics', metricsHandler(options.metrics));
  for (const router of options.routers ?? []) app.use(router);
  app.use((_request, response) => {
    response.status(404).json({ error: 'not found' });
  });
  app.use(errorHandler(options.log));
  return app;
}

function requestLogger(log: Logger): express.RequestHandler {
  return pinoHttp({
    logger: log,
    autoLogging: {
      ignore: (request) => QUIET_PATHS.has(request.url ?? ''),
    },
    serializers: {
      req: (request: { method: string; url: string }) => ({
        method: request.method,
        url: scrubClientText(request.url),
      }),
      res: (response: { statusCode: number }) => ({ statusCode: response.statusCode }),
    },
  });
}

export function metricsHandler(registry: Registry): express.RequestHandler {
  return async (_request, response) => {
    response.type(registry.contentType).send(await registry.metrics());
  };
}

/** An app that serves only GET /metrics, for a port of its own. */
export function createMetricsApp(registry: Registry): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/metrics', metricsHandler(registry));
  return app;
}

/** Body-parser and other client errors keep their 4xx status; anything else is ours, a 500. */
function errorHandler(log: Logger): ErrorRequestHandler {
  return (error, request, response, _next) => {
    const status = typeof error?.status === 'number' ? error.status : 500;
    if (status >= 400 && status < 500) {
      response.status(status).json({ error: error.expose ? error.message : 'bad request' });
      return;
    }
    log.error({ err: error, url: scrubClientText(request.url) }, 'request failed');
    if (!response.headersSent) response.status(500).json({ error: 'internal error' });
  };
}
