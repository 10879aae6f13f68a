import type { ConnectionOptions } from 'node:tls';
import { parse } from 'pg-connection-string';

/**
 * libpq's sslmode values that `pg` can honour. `prefer` encrypts without checking the
 * certificate but, unlike libpq, never falls back to plaintext: `pg` has no fallback.
 * `allow` (plaintext first) has no equivalent at all.
 */
export const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;

/** What `pg` needs to reach a server, taken from a DATABASE_URL as libpq would read it. */
export interface PostgresConnection {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** false or undefined: plaintext; otherwise TLS, with these options when it is an object. */
  ssl: boolean | ConnectionOptions | undefined;
}

/**
 * Turns a postgres:// URL into `pg`'s connection options, with libpq's meaning of `sslmode`
 * and `sslrootcert` (pg-connection-string, which `pg` itself uses, in its libpq mode). Every
 * connection the service makes goes through here, so the ORM, the health probe, the
 * migrations and the commands agree on TLS. Errors never quote the URL (it holds a password).
 */
export function postgresConnection(url: string): PostgresConnection {
  const sslmode = new URL(url).searchParams.get('sslmode');
  if (sslmode !== null && !(SSL_MODES as readonly string[]).includes(sslmode)) {
    throw new Error(`sslmode=${sslmode} is not supported (use one of ${SSL_MODES.join(', ')})`);
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(url, { useLibpqCompat: true });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    // pg-connection-string's own sentence for verify-ca without a CA is a paragraph.
    throw new Error(
      reason.includes('verify-ca')
        ? 'sslmode=verify-ca needs sslrootcert=<CA file>'
        : `cannot read sslrootcert: ${reason}`,
    );
  }
  return {
    host: parsed.host || '127.0.0.1',
    port: Number(parsed.port || 5432),
    user: parsed.user ?? '',
    password: parsed.password ?? '',
    database: parsed.database ?? '',
    ssl: parsed.ssl as PostgresConnection['ssl'],
  };
}
