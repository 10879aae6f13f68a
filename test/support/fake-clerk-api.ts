import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeUser {
  id: string;
  email?: string | null;
  /** Whether Clerk verified the address; true unless set. */
  emailVerified?: boolean;
  timezone?: string;
  createdAt: number;
  updatedAt: number;
}

export interface InjectedFault {
  /** The n-th GET /v1/users (1-based) answers with this fault instead. */
  onListRequest: number;
  /** An HTTP status to answer with, or 'network' to drop the connection without an answer. */
  status: 400 | 401 | 429 | 500 | 502 | 503 | 'network';
  retryAfterSeconds?: number;
}

export interface FakeClerkApi {
  url: string;
  users: FakeUser[];
  /** Every request's method and path with query, in order. */
  requests: string[];
  faults: InjectedFault[];
  /** Called with the n-th GET /v1/users (1-based) before it is answered: Clerk changing meanwhile. */
  beforeListRequest?: (requestNumber: number) => void;
  /** While set, every request is read and never answered: a Clerk, or a proxy, that hangs. */
  hang: boolean;
  /** How long each GET /v1/users/:id takes to answer, so that concurrent ones overlap. */
  userLookupDelayMs: number;
  /** The most GET /v1/users/:id in flight at once so far. */
  readonly peakConcurrentLookups: number;
  close(): Promise<void>;
}

/** The environment that points the service's Clerk client at a fake API, with the key it accepts. */
export function fakeClerkEnv(api: { url: string }) {
  return { CLERK_SECRET_KEY: 'sk_test_fake', CLERK_API_URL: api.url };
}

/** Generated users, oldest first, with Clerk-like ids and example.com addresses. */
export function generateUsers(count: number, start = 0): FakeUser[] {
  const base = Date.UTC(2024, 0, 1);
  return Array.from({ length: count }, (_, index) => {
    const n = start + index;
    return {
      id: `user_${String(n).padStart(8, '0')}backfill`,
      email: `person${n}@example.com`,
      timezone: n % 3 === 0 ? 'Europe/Paris' : undefined,
      createdAt: base + n * 1000,
      updatedAt: base + n * 1000 + 500,
    };
  });
}

/** The UserJSON the Backend API returns for a user (the fields Clerk documents, trimmed). */
export function userJson(user: FakeUser) {
  const emailId = `idn_${user.id.slice(5)}`;
  return {
    object: 'user',
    id: user.id,
    username: null,
    first_name: 'Backfill',
    last_name: 'User',
    image_url: 'https://img.clerk.com/x',
    has_image: false,
    primary_email_address_id: user.email ? emailId : null,
    primary_phone_number_id: null,
    primary_web3_wallet_id: null,
    password_enabled: false,
    two_factor_enabled: false,
    totp_enabled: false,
    backup_code_enabled: false,
    email_addresses: user.email
      ? [
          {
            id: emailId,
            object: 'email_address',
            email_address: user.email,
            verification:
              user.emailVerified === false
                ? null
                : { object: 'verification_email_code', status: 'verified', strategy: 'email_code' },
            linked_to: [],
          },
        ]
      : [],
    phone_numbers: [],
    web3_wallets: [],
    external_accounts: [],
    saml_accounts: [],
    public_metadata: user.timezone ? { timezone: user.timezone } : {},
    private_metadata: {},
    unsafe_metadata: {},
    external_id: null,
    last_sign_in_at: null,
    banned: false,
    locked: false,
    created_at: user.createdAt,
    updated_at: user.updatedAt,
    last_active_at: null,
  };
}

/**
 * A loopback stand-in for Clerk's Backend API: GET /v1/users (limit, offset; oldest first),
 * GET /v1/users/count and GET /v1/users/:id, in the documented shapes, with faults injected
 * on chosen list requests.
 */
export async function startFakeClerkApi(
  users: FakeUser[],
  faults: InjectedFault[] = [],
): Promise<FakeClerkApi> {
  let listRequests = 0;
  let lookupsInFlight = 0;
  // What the tests read and change while the server runs; the handler reads it from here.
  const api: Omit<FakeClerkApi, 'url' | 'close' | 'peakConcurrentLookups'> & {
    peakConcurrentLookups: number;
  } = { users, requests: [], faults, hang: false, userLookupDelayMs: 0, peakConcurrentLookups: 0 };

  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    api.requests.push(`${request.method} ${url.pathname}${url.search}`);
    if (api.hang) return;
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      response.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      response.end(JSON.stringify(body));
    };
    if (request.headers.authorization !== 'Bearer sk_test_fake') {
      return send(401, { errors: [{ code: 'authentication_invalid', message: 'invalid key' }] });
    }
    if (url.pathname === '/v1/users/count') {
      return send(200, { object: 'total_count', total_count: api.users.length });
    }
    if (url.pathname === '/v1/users') {
      listRequests++;
      api.beforeListRequest?.(listRequests);
      const fault = api.faults.find((candidate) => candidate.onListRequest === listRequests);
      if (fault?.status === 'network') return void request.socket.destroy();
      if (fault) {
        const headers: Record<string, string> =
          fault.retryAfterSeconds !== undefined
            ? { 'Retry-After': String(fault.retryAfterSeconds) }
            : {};
        return send(
          fault.status,
          { errors: [{ code: 'injected', message: `injected ${fault.status}` }] },
          headers,
        );
      }
      const limit = Math.min(Number(url.searchParams.get('limit') ?? 10), 500);
      const offset = Number(url.searchParams.get('offset') ?? 0);
      // Users are kept oldest first, the order the backfill asks for (order_by=+created_at).
      return send(200, api.users.slice(offset, offset + limit).map(userJson));
    }
    const single = url.pathname.match(/^\/v1\/users\/([^/]+)$/);
    if (!single)
      return send(404, { errors: [{ code: 'resource_not_found', message: 'not found' }] });
    lookupsInFlight++;
    api.peakConcurrentLookups = Math.max(api.peakConcurrentLookups, lookupsInFlight);
    setTimeout(() => {
      lookupsInFlight--;
      const user = api.users.find((candidate) => candidate.id === single[1]);
      if (user) return send(200, userJson(user));
      send(404, { errors: [{ code: 'resource_not_found', message: 'not found' }] });
    }, api.userLookupDelayMs);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(api, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}
