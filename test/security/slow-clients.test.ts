import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { expect, it } from 'vitest';
import { HEADERS_TIMEOUT_MS } from '../../src/services/lifecycle.ts';
import { health, type ServiceProcess } from '../support/services.ts';
import { report, useFaultStack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';

const DRIBBLE_EVERY_MS = 500;
/** The header timeout plus about a second; Node's own sweep, every 30 s, let such a client stay 20 s. */
const CLOSED_WITHIN_MS = HEADERS_TIMEOUT_MS + 1_500;
/** How long the test keeps dribbling before it calls the connection kept open. */
const GIVE_UP_AFTER_MS = HEADERS_TIMEOUT_MS + 5_000;
const MAX_CONNECTIONS = 4;

const stack = useFaultStack();

function connectTo(service: ServiceProcess): Promise<Socket> {
  const { hostname, port } = new URL(service.url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => undefined);
  return once(socket, 'connect').then(() => socket);
}

interface Dribbled {
  /** When the server closed the connection, from the first byte; undefined if it never did. */
  closedAfterMs: number | undefined;
  answer: string;
}

/** Starts a request and then sends one header byte every DRIBBLE_EVERY_MS, never finishing. */
async function dribbleHeaders(service: ServiceProcess): Promise<Dribbled> {
  const socket = await connectTo(service);
  let answer = '';
  let closedAfterMs: number | undefined;
  const startedAt = performance.now();
  socket.on('data', (chunk: Buffer) => {
    answer += chunk.toString('latin1');
  });
  socket.on('close', () => {
    closedAfterMs = performance.now() - startedAt;
  });
  socket.write('GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
  while (closedAfterMs === undefined && performance.now() - startedAt < GIVE_UP_AFTER_MS) {
    await new Promise((resolve) => setTimeout(resolve, DRIBBLE_EVERY_MS));
    if (!socket.destroyed) socket.write('a');
  }
  socket.destroy();
  return { closedAfterMs, answer };
}

it.each([
  ['receiver', () => stack.startReceiver()],
  ["worker's status server", () => stack.startWorker()],
])(
  'the %s closes a connection that dribbles its headers once the header timeout is up',
  async (kind, start) => {
    const service = await start();
    const { closedAfterMs, answer } = await dribbleHeaders(service);
    report('security: slow headers', { kind, closedAfterMs: closedAfterMs?.toFixed(0) });
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(closedAfterMs).toBeDefined();
    expect(closedAfterMs).toBeLessThan(CLOSED_WITHIN_MS);
    expect((await health(service)).status).toBe(200);
  },
);

it('closes connections beyond MAX_CONNECTIONS at once, and takes new ones when some go', async () => {
  const receiver = await stack.startReceiver({ MAX_CONNECTIONS: String(MAX_CONNECTIONS) });
  const held = await Promise.all(
    Array.from({ length: MAX_CONNECTIONS }, () => connectTo(receiver)),
  );

  const refused = await connectTo(receiver);
  const [bytes] = await Promise.all([
    new Promise<number>((resolve) => {
      let received = 0;
      refused.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      refused.on('close', () => resolve(received));
    }),
    refused.write('GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n'),
  ]);
  expect(bytes).toBe(0);

  for (const socket of held) socket.destroy();
  await waitFor(
    async () => (await health(receiver).catch(() => undefined))?.status === 200,
    5_000,
    'a connection taken once the held ones are gone',
  );
});
