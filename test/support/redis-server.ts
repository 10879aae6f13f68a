import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import type { Redis } from 'ioredis';
import { type Child, freePort, spawnChild, tail } from './processes.ts';

const READY_TIMEOUT_MS = 15_000;

/**
 * A redis-server of the test's own, on a free loopback port, persisting to an append-only file
 * in a temporary directory the way production runs it (`appendfsync everysec`, no RDB
 * snapshots). It can be killed outright and restarted on the same port from the same files.
 * Options make it TLS-only, a replica, a sentinel or a cluster node.
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

/** Certificate files for a TLS-only server: its certificate and key, and the CA clients trust. */
export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

export interface PrivateRedisOptions {
  /** More redis-server arguments, after the defaults (a later one wins): a replica, a cluster node. */
  args?: string[];
  /**
   * Lines of a config file written to the server's directory and passed first: Sentinel needs
   * a file of its own that it can rewrite. `{port}` and `{dir}` are filled in.
   */
  configLines?: string[];
  /** TLS only: the plain port is off and `port` is the TLS port, with this certificate. */
  tls?: TlsFiles;
}

export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'clerk-sync-faults-redis-'));
  const configFile = join(dir, 'redis.conf');
  if (options.configLines) {
    const fill = (line: string) => line.replaceAll('{port}', String(port)).replaceAll('{dir}', dir);
    await writeFile(configFile, `${options.configLines.map(fill).join('\n')}\n`);
  }
  const tls = options.tls;
  const args = [
    ...(options.configLines ? [configFile] : []),
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
    ...(tls
      ? [
          ...['--port', '0', '--tls-port', String(port), '--tls-auth-clients', 'no'],
          ...['--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca],
        ]
      : []),
    ...(options.args ?? []),
  ];
  const redis: PrivateRedis = {
    port,
    url: `${tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
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
      await waitForPong(port, child, tls);
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

/**
 * Waits until the server answers PING with PONG (not LOADING while it replays the AOF), or
 * asks for the password it was given.
 */
async function waitForPong(port: number, child: Child, tls: TlsFiles | undefined): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!child.isRunning()) throw new Error(`redis-server exited at start\n${tail(child)}`);
    const reply = await ping(port, tls);
    if (reply === '+PONG' || reply.startsWith('-NOAUTH')) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server on ${port} did not answer PONG in time\n${tail(child)}`);
}

function ping(port: number, tls: TlsFiles | undefined): Promise<string> {
  return new Promise((resolve) => {
    const socket: Socket = tls
      ? connectTls({ host: '127.0.0.1', port, ca: readFileSync(tls.ca) })
      : createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (answer: string) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(1_000, () => done('timeout'));
    socket.on('error', () => done('error'));
    socket.on(tls ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.trim());
    });
  });
}

/** Bytes Redis reports in use (INFO memory). */
export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1]);
}
