import { request } from 'node:http';

export interface RawRequest {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as it is; undefined sends no body at all. */
  body?: Buffer | string;
  timeoutMs?: number;
}

export interface RawResponse {
  status: number;
  body: string;
}

/**
 * Sends exactly this method, path, headers and body to `baseUrl` (http://host:port), which fetch
 * would not always let through: a body on GET, a Content-Encoding it did not make, a path it
 * would normalize.
 */
export function rawRequest(
  baseUrl: string,
  path: string,
  options: RawRequest = {},
): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: hostname,
        port,
        path,
        method: options.method ?? 'POST',
        // Node's client sends a body on GET, HEAD, OPTIONS or DELETE without a length unless told
        // one, and the server then reads it as the start of the next request.
        headers: {
          ...(options.body === undefined
            ? {}
            : { 'content-length': Buffer.byteLength(options.body) }),
          ...options.headers,
        },
        timeout: options.timeoutMs ?? 15_000,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
        response.on('error', reject);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer from ${baseUrl} in time`)));
    outgoing.on('error', reject);
    outgoing.end(options.body);
  });
}

/** A service's /metrics (Prometheus's text format), which must answer 200. */
export async function metricsText(baseUrl: string): Promise<string> {
  const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
  if (response.status !== 200)
    throw new Error(`GET ${baseUrl}/metrics answered ${response.status}`);
  return response.text();
}
