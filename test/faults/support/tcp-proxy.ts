import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';

/**
 * A TCP relay on a free loopback port in front of another loopback service (PostgreSQL), which
 * the test can use to cut every connection through it and to refuse new ones, as a network
 * partition or a database restart would look to its clients.
 */
export interface TcpProxy {
  port: number;
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
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  /** Each relayed connection: the client's socket and the one to the target. */
  const connections = new Set<[Socket, Socket]>();
  let refusing = false;
  let accepted = 0;
  let refused = 0;

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
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');

  const destroyAll = () => {
    for (const connection of connections) for (const socket of connection) socket.destroy();
  };
  return {
    port: (server.address() as { port: number }).port,
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
      for (const [client, upstream] of connections) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    async close() {
      destroyAll();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
