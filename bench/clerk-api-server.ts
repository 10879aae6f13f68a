/**
 * A stand-in for Clerk's Backend API for the backfill benchmark, run as its own process:
 * BENCH_USERS generated users, oldest first, on PORT. Every user is serialized before the
 * server reports healthy, so during the measurement a page costs the shared cores little more
 * than joining strings and its socket writes (the real API's CPU is not on this machine at all).
 */
import { createServer } from 'node:http';
import { generateUsers, userJson } from '../test/support/fake-clerk-api.ts';

const PAGE_SIZE = 500;
const users = generateUsers(Number(process.env.BENCH_USERS)).map((user) =>
  JSON.stringify(userJson(user)),
);
const count = JSON.stringify({ object: 'total_count', total_count: users.length });

const server = createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const send = (status: number, body: string) => {
    response.writeHead(status, { 'Content-Type': 'application/json' });
    response.end(body);
  };
  if (url.pathname === '/api/v1/health') return send(200, '{"status":"ok"}');
  if (url.pathname === '/v1/users/count') return send(200, count);
  if (url.pathname === '/v1/users') {
    const limit = Math.min(Number(url.searchParams.get('limit') ?? 10), PAGE_SIZE);
    const offset = Number(url.searchParams.get('offset') ?? 0);
    return send(200, `[${users.slice(offset, offset + limit).join(',')}]`);
  }
  send(404, '{"errors":[{"code":"resource_not_found","message":"not found"}]}');
});
server.listen(Number(process.env.PORT), '127.0.0.1');
process.once('SIGTERM', () => server.close(() => process.exit(0)));
