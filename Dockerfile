# syntax=docker/dockerfile:1
# One image for both processes: the receiver (default command) and the worker
# (command: node <heap flags> src/bin/worker.ts). Node 24 runs the TypeScript sources directly.

FROM node:24-bookworm-slim AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=dependencies /app/node_modules ./node_modules
COPY package.json tsconfig.json mikro-orm.config.ts ./
COPY src ./src
COPY migrations ./migrations
USER node
EXPOSE 3000 9464
# HEALTH_PORT is the receiver's PORT or the worker's WORKER_METRICS_PORT. /readyz asks only for
# what the process needs: a receiver stays healthy while PostgreSQL is down, as it still queues.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.HEALTH_PORT ?? 3000}/readyz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Heap limits as in package.json's start:receiver / start:worker scripts (docs/performance.md).
CMD ["node", "--max-semi-space-size=4", "--max-old-space-size=64", "src/bin/receiver.ts"]
