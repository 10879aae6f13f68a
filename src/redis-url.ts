/** One Redis server (a sentinel, or a cluster node the client starts from). */
export interface RedisNode {
  host: string;
  port: number;
}

interface Credentials {
  username: string | undefined;
  password: string | undefined;
  tls: boolean;
}

/** Where a REDIS_URL points, in one of the forms clerk-sync accepts. */
export type RedisTarget =
  | { mode: 'standalone'; url: string; tls: boolean }
  | ({ mode: 'sentinel'; sentinels: RedisNode[]; masterName: string; db: number } & Credentials)
  | ({ mode: 'cluster'; nodes: RedisNode[] } & Credentials);

export const REDIS_URL_FORMS =
  'redis[s]://[:password@]host:6379[/db], redis[s]+sentinel://[:password@]host1:26379,host2:26379/mastername[/db] or redis[s]+cluster://[:password@]host1:7000,host2:7001';

const MULTI_HOST_URL = /^(rediss?)\+(sentinel|cluster):\/\/(?:([^@/?#]*)@)?([^/?#]+)(\/[^?#]*)?$/;
const HOST_PORT = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/;
const DEFAULT_PORT = { sentinel: 26379, cluster: 6379 } as const;

/**
 * Reads a REDIS_URL: a single server (`redis://`, `rediss://` for TLS), a master found through
 * Sentinel (`redis+sentinel://`), or a Redis Cluster (`redis+cluster://`), with `rediss+…` for
 * TLS. The password in the URL is the data servers' own; sentinels are reached without one.
 * Errors never quote the URL, which holds the password.
 */
export function parseRedisUrl(url: string): RedisTarget {
  const multi = MULTI_HOST_URL.exec(url);
  if (!multi) return parseSingleServerUrl(url);
  const [, scheme, kind, userinfo, hostList = '', path = ''] = multi;
  const mode = kind as 'sentinel' | 'cluster';
  const nodes = hostList.split(',').map((item) => parseNode(item, DEFAULT_PORT[mode]));
  const [username, password] = (userinfo ?? '').split(/:(.*)/s);
  const credentials: Credentials = {
    username: username ? decodeURIComponent(username) : undefined,
    password: password ? decodeURIComponent(password) : undefined,
    tls: scheme === 'rediss',
  };
  const segments = path.split('/').filter(Boolean);
  if (mode === 'cluster') {
    if (segments.length > 0)
      throw new Error('a Redis Cluster URL takes no path (no database number)');
    return { mode, nodes, ...credentials };
  }
  const [masterName, db = '0'] = segments;
  if (!masterName || segments.length > 2 || !/^\d+$/.test(db)) {
    throw new Error('a Sentinel URL ends in /<master name> or /<master name>/<db number>');
  }
  return {
    mode,
    sentinels: nodes,
    masterName: decodeURIComponent(masterName),
    db: Number(db),
    ...credentials,
  };
}

function parseSingleServerUrl(url: string): RedisTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('is not a URL');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error(`has the unknown scheme ${parsed.protocol}`);
  }
  if (!parsed.hostname) throw new Error('names no host');
  if (!/^\/?\d*$/.test(parsed.pathname))
    throw new Error('has a path that is not a database number');
  return { mode: 'standalone', url, tls: parsed.protocol === 'rediss:' };
}

function parseNode(item: string, defaultPort: number): RedisNode {
  const match = HOST_PORT.exec(item);
  const port = Number(match?.[3] ?? defaultPort);
  // The item is not quoted: with an unescaped @ in the password, part of it lands here.
  if (!match || port < 1 || port > 65535)
    throw new Error('has a host list that is not host:port,…');
  return { host: (match[1] ?? match[2]) as string, port };
}

/** The servers a target names, for messages: host:port, comma-separated. */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.mode === 'standalone') {
    const url = new URL(target.url);
    return `${url.hostname}:${url.port || 6379}`;
  }
  const nodes = target.mode === 'sentinel' ? target.sentinels : target.nodes;
  const list = nodes.map((node) => `${node.host}:${node.port}`).join(',');
  return target.mode === 'sentinel'
    ? `sentinels ${list} (master ${target.masterName})`
    : `cluster ${list}`;
}
