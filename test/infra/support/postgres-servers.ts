import { execFile, execFileSync } from 'node:child_process';
import { chmod, chown, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SERVER_URL } from '../../support/database.ts';
import { type Child, freePort, spawnChild, tail } from '../../support/processes.ts';
import { waitFor } from '../../support/wait.ts';

const run = promisify(execFile);
const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
const READY_TIMEOUT_MS = 30_000;

/** postgres and pgbouncer refuse to run as root: they run as the `postgres` user. */
function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** A directory of the test's own that the postgres user owns. */
async function postgresOwnedDirectory(prefix: string): Promise<string> {
  const { uid, gid } = postgresUser();
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chown(dir, uid, gid);
  return dir;
}

async function waitUntilAccepting(port: number, child: Child): Promise<void> {
  await waitFor(
    async () => {
      if (!child.isRunning()) throw new Error(`${child.name} exited at start\n${tail(child)}`);
      return run(`${PG_BIN}/pg_isready`, ['-q', '-h', '127.0.0.1', '-p', String(port)]).then(
        () => true,
        () => false,
      );
    },
    READY_TIMEOUT_MS,
    `${child.name} accepting connections on ${port}`,
  );
}

export interface ServerTls {
  cert: string;
  key: string;
}

/**
 * A PostgreSQL cluster of the test's own (initdb, the machine's PostgreSQL binaries, pgvector
 * included), on a free loopback port. start() takes the TLS setting and pg_hba lines of each
 * run, so one cluster can be a plaintext server and then a TLS-only one.
 */
export interface PrivatePostgres {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/<database>, with `query` (sslmode=…) when given. */
  url(database: string, query?: string): string;
  start(options: { tls?: ServerTls; hba: string[] }): Promise<void>;
  stop(): Promise<void>;
  destroy(): Promise<void>;
}

export async function initPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = await postgresOwnedDirectory('clerk-sync-infra-pg-');
  const user = postgresUser();
  const data = join(dir, 'data');
  const initdb = spawnChild(
    'initdb',
    `${PG_BIN}/initdb`,
    ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'],
    user,
  );
  const exit = await initdb.exited;
  if (exit.code !== 0) throw new Error(`initdb failed\n${tail(initdb)}`);
  const port = await freePort();
  let server: Child | undefined;

  const postgres: PrivatePostgres = {
    port,
    url: (database, query) =>
      `postgresql://postgres@127.0.0.1:${port}/${database}${query ? `?${query}` : ''}`,
    async start({ tls, hba }) {
      if (server) throw new Error(`postgres on ${port} is already running`);
      const hbaFile = join(dir, 'pg_hba.conf');
      await writeFile(hbaFile, `${['local all all trust', ...hba].join('\n')}\n`);
      const settings = [
        `listen_addresses=127.0.0.1`,
        `unix_socket_directories=${dir}`,
        `hba_file=${hbaFile}`,
        'fsync=off',
        'synchronous_commit=off',
        'full_page_writes=off',
        `ssl=${tls ? 'on' : 'off'}`,
      ];
      const owned = [hbaFile];
      if (tls) {
        // Copies the postgres user owns: PostgreSQL reads a key only when its owner alone can.
        const [cert, key] = [join(dir, 'server.crt'), join(dir, 'server.key')];
        await Promise.all([copyFile(tls.cert, cert), copyFile(tls.key, key)]);
        await chmod(key, 0o600);
        owned.push(cert, key);
        settings.push(`ssl_cert_file=${cert}`, `ssl_key_file=${key}`);
      }
      await Promise.all(owned.map((file) => chown(file, user.uid, user.gid)));
      server = spawnChild(
        `postgres :${port}`,
        `${PG_BIN}/postgres`,
        ['-D', data, '-p', String(port), ...settings.flatMap((setting) => ['-c', setting])],
        user,
      );
      await waitUntilAccepting(port, server);
    },
    async stop() {
      // SIGINT is PostgreSQL's fast shutdown: clients are disconnected, nothing is waited for.
      await server?.stop('SIGINT');
      server = undefined;
    },
    async destroy() {
      await postgres.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return postgres;
}

/** A PgBouncer in transaction mode in front of the suite's PostgreSQL, as Supabase's pooler is. */
export interface PgBouncer {
  port: number;
  /** The pooled URL of a database on the suite's server. */
  url(database: string): string;
  stop(): Promise<void>;
}

export async function startPgBouncer(options: {
  poolSize: number;
  /** A port chosen earlier (by freePort), so that URLs can name it before it listens. */
  port?: number;
}): Promise<PgBouncer> {
  const dir = await postgresOwnedDirectory('clerk-sync-infra-pgbouncer-');
  const backend = new URL(SERVER_URL);
  const port = options.port ?? (await freePort());
  const configFile = join(dir, 'pgbouncer.ini');
  await writeFile(
    configFile,
    [
      '[databases]',
      `* = host=${backend.hostname} port=${backend.port || 5432} user=${decodeURIComponent(backend.username) || 'postgres'}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = any',
      'pool_mode = transaction',
      `default_pool_size = ${options.poolSize}`,
      `max_db_connections = ${options.poolSize}`,
      'max_client_conn = 1000',
      'logfile =',
      'pidfile =',
      '',
    ].join('\n'),
  );
  const child = spawnChild(
    `pgbouncer :${port}`,
    '/usr/sbin/pgbouncer',
    [configFile],
    postgresUser(),
  );
  await waitUntilAccepting(port, child);
  return {
    port,
    url: (database) => `postgresql://postgres@127.0.0.1:${port}/${database}`,
    async stop() {
      await child.stop('SIGINT');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
