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
  const open = new Set<Socket>();
  const clients = new Set<Socket>();
  const pairs = new Set<[Socket, Socket]>();
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
    clients.add(client);
    client.on('close', () => clients.delete(client));
    const upstream = createConnection(target);
    for (const socket of [client, upstream]) {
      open.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        open.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.on('close', () => pairs.delete(pair));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');

  return {
    port: (server.address() as { port: number }).port,
    get accepted() {
      return accepted;
    },
    get refused() {
      return refused;
    },
    get open() {
      return clients.size;
    },
    cutAll() {
      for (const socket of open) socket.destroy();
    },
    refuse() {
      refusing = true;
    },
    accept() {
      refusing = false;
    },
    stallAll() {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
      pairs.clear();
    },
    async close() {
      for (const socket of open) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
