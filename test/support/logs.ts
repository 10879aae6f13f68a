import { Writable } from 'node:stream';
import { afterEach, expect } from 'vitest';
import { createLogger, type Logger } from '../../src/logger.ts';

export interface CapturedLogs {
  log: Logger;
  lines: string[];
  records: () => Record<string, unknown>[];
}

/** A real pino logger whose JSON lines are kept in memory for assertions. */
export function capturingLogger(level = 'debug'): CapturedLogs {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return {
    log: createLogger({ level }, stream),
    lines,
    records: () => lines.map((line) => JSON.parse(line)),
  };
}

const EMAIL_ADDRESS = /[\w.+-]+@[\w-]+\.[\w.-]+/;

/**
 * After each test, fails that very test when what it logged holds an email address or one of
 * the secrets; then forgets those lines.
 */
export function expectCleanLogsAfterEach(logs: CapturedLogs, secrets: readonly string[]): void {
  afterEach(() => {
    const output = logs.lines.splice(0).join('\n');
    expect(output.match(EMAIL_ADDRESS)?.[0], 'an email address in the logs').toBeUndefined();
    for (const secret of secrets) expect(output, 'a secret in the logs').not.toContain(secret);
  });
}
