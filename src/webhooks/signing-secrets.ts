import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../config.ts';
import { ConfigError } from '../errors.ts';

/** Where the generated development secret lives; the file is ignored by git. */
export const DEV_SECRET_FILE = resolve(process.cwd(), '.dev-webhook-secret');

/**
 * The secrets deliveries are verified with: CLERK_WEBHOOK_SIGNING_SECRET when set. Outside
 * production, with none set, a development secret is generated once into DEV_SECRET_FILE and
 * shared by the service and `npm run webhook:send`; in production a missing secret is an error.
 */
export function resolveSigningSecrets(config: Config, file = DEV_SECRET_FILE): readonly string[] {
  if (config.webhookSecrets.length > 0) return config.webhookSecrets;
  if (config.nodeEnv === 'production') {
    throw new ConfigError('CLERK_WEBHOOK_SIGNING_SECRET is required when NODE_ENV=production');
  }
  return [readOrCreateDevSecret(file)];
}

function readOrCreateDevSecret(file: string): string {
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  try {
    writeFileSync(file, `${secret}\n`, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const existing = readFileSync(file, 'utf8').trim();
    if (!existing.startsWith('whsec_'))
      throw new ConfigError(`${file} does not hold a whsec_ secret`);
    return existing;
  }
  process.stderr.write(
    `clerk-sync: CLERK_WEBHOOK_SIGNING_SECRET is not set, so a development secret was created in ${file}:\n` +
      `  ${secret}\n` +
      "  `npm run webhook:send` signs with it. Set CLERK_WEBHOOK_SIGNING_SECRET to your Clerk endpoint's secret for real deliveries.\n",
  );
  return secret;
}
