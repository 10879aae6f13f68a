import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Child, freePort, spawnChild, tail } from './processes.ts';

const READY_TIMEOUT_MS = 15_000;

/**
 * A redis-server of the test's own, on a free loopback port, persisting to an append-only file
 * in a temporary directory the way production runs it (`appendfsync everysec`, no RDB
 * snapshots). It can be killed outright and restarted on the same port from the same files.
 */
export interface PrivateRedis {
  port: number;
  url: string;
  dir: string;
  /** The running server, undefined while it is down. */
  child: Child | undefined;
  /** SIGKILL: no shutdown, no final fsync; whatever the AOF holds is all that survives. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory, replaying the AOF, and waits for PONG. */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: connections stay open and nothing answers. */
  freeze(): void;
  thaw(): void;
  /** Kills it and removes its directory. */
  destroy(): Promise<void>;
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'clerk-sync-faults-redis-'));
  const args = [
    '--bind',
    '127.0.0.1',
    '--port',
    String(port),
    '--dir',
    dir,
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--save',
    '',
    '--daemonize',
    'no',
    '--protected-mode',
    'yes',
    '--maxmemory-policy',
    'noeviction',
    '--loglevel',
    'warning',
  ];
  const redis: PrivateRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    child: undefined,
    async kill() {
      const child = redis.child;
      redis.child = undefined;
      if (child) await child.stop('SIGKILL');
    },
    async restart() {
      if (redis.child) throw new Error('redis-server is already running');
      const child = spawnChild(`redis-server :${port}`, 'redis-server', args);
      redis.child = child;
      await waitForPong(port, child);
    },
    freeze() {
      redis.child?.process.kill('SIGSTOP');
    },
    thaw() {
      redis.child?.process.kill('SIGCONT');
    },
    async destroy() {
      await redis.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await redis.restart();
  return redis;
}

/** Waits until the server answers PING with PONG (not LOADING while it replays the AOF). */
async function waitForPong(port: number, child: Child): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!child.isRunning()) throw new Error(`redis-server exited at start\n${tail(child)}`);
    if ((await ping(port)) === '+PONG') return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server on ${port} did not answer PONG in time\n${tail(child)}`);
}

function ping(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (answer: string) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(1_000, () => done('timeout'));
    socket.on('error', () => done('error'));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.trim());
    });
  });
}
