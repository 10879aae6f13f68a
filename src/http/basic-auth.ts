import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * HTTP basic auth against one username and password. Both are compared as SHA-256 digests
 * with timingSafeEqual, so neither their content nor their length leaks through timing.
 */
export function basicAuth(
  credentials: { username: string; password: string },
  realm: string,
): RequestHandler {
  const expectedUser = digest(credentials.username);
  const expectedPassword = digest(credentials.password);
  return (request, response, next) => {
    const [scheme, encoded] = (request.headers.authorization ?? '').split(' ');
    const decoded =
      scheme?.toLowerCase() === 'basic' && encoded ? Buffer.from(encoded, 'base64').toString() : '';
    const separator = decoded.indexOf(':');
    const user = separator >= 0 ? decoded.slice(0, separator) : '';
    const password = separator >= 0 ? decoded.slice(separator + 1) : '';
    const userMatches = timingSafeEqual(digest(user), expectedUser);
    const passwordMatches = timingSafeEqual(digest(password), expectedPassword);
    if (separator >= 0 && userMatches && passwordMatches) {
      next();
      return;
    }
    response.set('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`);
    response.status(401).json({ error: 'authentication required' });
  };
}
