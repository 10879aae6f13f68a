import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

/** How many lines of a child's output are kept for a failure message. */
const OUTPUT_LINES_KEPT = 400;
const STOP_TIMEOUT_MS = 10_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process of the test, its recent output, and a promise of its exit. */
export interface Child {
  name: string;
  process: ChildProcess;
  pid: number;
  /** The last OUTPUT_LINES_KEPT lines of stdout and stderr. */
  output: string[];
  exited: Promise<Exit>;
  isRunning(): boolean;
  /** Sends the signal and waits for the exit (SIGKILL after STOP_TIMEOUT_MS). */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
  /** The exit, or undefined when the process is still running after `ms`. */
  exitWithin(ms: number): Promise<Exit | undefined>;
}

const running = new Set<Child>();

/**
 * Kills every child still running, synchronously, when the test process goes away without
 * its afterAll (a crash, a timeout that ends the fork).
 */
process.once('exit', () => {
  for (const child of running) child.process.kill('SIGKILL');
});

export function spawnChild(
  name: string,
  command: string,
  args: string[],
  /** uid and gid: servers that refuse to run as root (postgres, pgbouncer) run as another user. */
  options: { cwd?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {},
): Child {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    uid: options.uid,
    gid: options.gid,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      output.push(...chunk.split('\n').filter(Boolean));
      if (output.length > OUTPUT_LINES_KEPT) output.splice(0, output.length - OUTPUT_LINES_KEPT);
    });
  }
  const exited = once(child, 'exit').then(([code, signal]) => ({ code, signal }) as Exit);
  const handle: Child = {
    name,
    process: child,
    pid: child.pid,
    output,
    exited,
    isRunning: () => child.exitCode === null && child.signalCode === null,
    async exitWithin(ms) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), ms);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    async stop(signal = 'SIGKILL') {
      if (!handle.isRunning()) return exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  running.add(handle);
  void exited.then(() => running.delete(handle));
  return handle;
}

/** Kills every child of this test process that is still running, and waits for them. */
export async function killAllChildren(): Promise<void> {
  await Promise.all([...running].map((child) => child.stop('SIGKILL')));
}

/** A TCP port on 127.0.0.1 that nothing listened on a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The child's last lines, for an assertion message. */
export function tail(child: Child, lines = 30): string {
  return `${child.name} (pid ${child.pid}) last output:\n${child.output.slice(-lines).join('\n')}`;
}
