import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';

/**
 * A TCP relay on a free loopback port in front of another loopback service (PostgreSQL, Redis),
 * which a test uses to make that service look partitioned, restarted, or hung to its clients.
 */
export interface TcpProxy {
  port: number;
  /** The URL the proxy was started for, with the proxy in the server's place. */
  url: string;
  /** Connections relayed since the start. */
  readonly accepted: number;
  /** Connections turned away while refusing. */
  readonly refused: number;
  /** Client connections open through it now. */
  readonly open: number;
  /** Destroys every open connection, on both sides. */
  cutAll(): void;
  /** New connections are reset at once (the client sees ECONNRESET). */
  refuse(): void;
  /** New connections are relayed again. */
  accept(): void;
  /**
   * Every connection open now stops relaying, in both directions, but stays open: a peer that
   * vanished without a reset, as a dead host or a dropped route looks. New connections relay.
   */
  stallAll(): void;
  /** Like stallAll, and new connections are accepted but stalled too: a server that hangs. */
  hang(): void;
  /** Every connection relays again, the bytes held meanwhile included. */
  recover(): void;
  /**
   * New connections go to the server this URL names; open ones stay where they are, as when a
   * DNS name is moved to another host.
   */
  retarget(url: string): void;
  close(): Promise<void>;
}

/** Relays with plain 'data' listeners rather than pipe(), which would resume a paused socket on 'drain'. */
function relay(from: Socket, to: Socket): void {
  from.on('data', (chunk) => to.write(chunk));
}

const DEFAULT_PORTS: Record<string, number> = {
  'postgresql:': 5432,
  'postgres:': 5432,
  'redis:': 6379,
};

/** A proxy in front of the server a `postgresql://` or `redis://` URL names. */
export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  const addressOf = (url: string) => {
    const address = new URL(url);
    return {
      host: address.hostname,
      port: Number(address.port || DEFAULT_PORTS[address.protocol]),
    };
  };
  let target = addressOf(targetUrl);
  /** Each relayed connection: the client's socket and the one to the target. */
  const connections = new Set<[Socket, Socket]>();
  let refusing = false;
  let hanging = false;
  let accepted = 0;
  let refused = 0;

  const pause = ([client, upstream]: [Socket, Socket]) => {
    client.pause();
    upstream.pause();
  };
  const server = createServer((client) => {
    if (refusing) {
      refused++;
      client.on('error', () => undefined);
      client.resetAndDestroy();
      return;
    }
    accepted++;
    const upstream = createConnection(target);
    const connection: [Socket, Socket] = [client, upstream];
    connections.add(connection);
    for (const socket of connection) {
      socket.on('error', () => undefined);
      socket.on('close', () => {
        connections.delete(connection);
        client.destroy();
        upstream.destroy();
      });
    }
    relay(client, upstream);
    relay(upstream, client);
    if (hanging) pause(connection);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');

  const destroyAll = () => {
    for (const connection of connections) for (const socket of connection) socket.destroy();
  };
  const port = (server.address() as { port: number }).port;
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    port,
    url: url.toString(),
    get accepted() {
      return accepted;
    },
    get refused() {
      return refused;
    },
    get open() {
      return connections.size;
    },
    cutAll: destroyAll,
    refuse() {
      refusing = true;
    },
    accept() {
      refusing = false;
    },
    stallAll() {
      for (const connection of connections) pause(connection);
    },
    hang() {
      hanging = true;
      for (const connection of connections) pause(connection);
    },
    recover() {
      hanging = false;
      for (const [client, upstream] of connections) {
        client.resume();
        upstream.resume();
      }
    },
    retarget(url) {
      target = addressOf(url);
    },
    async close() {
      destroyAll();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
