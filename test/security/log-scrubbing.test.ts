import { expect, it } from 'vitest';
import { processCpuMicros } from '../../bench/cpu.ts';

const LOGGED_TEXT_MAX_CHARS = 300;

import { rawRequest } from '../support/http.ts';
import { report, useReceiverStack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';

/** Inside Node's 16 KiB header limit, with room for the request line and the Host header. */
const URL_CHARS = 15_000;
const REQUESTS_PER_SHAPE = 10;
/** Generous: a linear scrub costs well under a millisecond; the quadratic one cost 820 ms. */
const CPU_PER_REQUEST_MAX_MS = 20;
const EMAIL = 'jane.doe@example.com';

// info: the request lines are logged, so the scrubber runs on every URL.
const { receiver } = useReceiverStack({ LOG_LEVEL: 'info' });

/** URLs that make a backtracking email pattern work hardest, each with an address to hide. */
const shapes: Record<string, string> = {
  'a run of letters': 'a'.repeat(URL_CHARS),
  'an @ before a long domain': `a@${'a.'.repeat(URL_CHARS / 2)}`,
  'many local parts': `${'a'.repeat(50)}@`.repeat(URL_CHARS / 51),
  'dots a letter apart': `x@${'.x'.repeat(URL_CHARS / 2)}`,
};

/** The receiver's log lines for the requests answered 404, the long URLs. */
function requestLines(): string[] {
  return receiver.output.filter((line) => line.includes('"statusCode":404'));
}

it.each(Object.entries(shapes))(
  'logs a 15,000-character URL (%s) for a few milliseconds of CPU, cut and without the address',
  async (shape, filler) => {
    const path = `/${EMAIL}/${filler}`.slice(0, URL_CHARS);
    const linesBefore = requestLines().length;
    const before = await processCpuMicros(receiver.pid);
    for (let sent = 0; sent < REQUESTS_PER_SHAPE; sent++) {
      expect((await rawRequest(receiver.url, path, { method: 'GET' })).status).toBe(404);
    }
    const cpuMicros = (await processCpuMicros(receiver.pid)) - before;
    const cpuPerRequestMs = cpuMicros / 1000 / REQUESTS_PER_SHAPE;
    report('security: long URL', { shape, cpuPerRequestMs: cpuPerRequestMs.toFixed(2) });
    expect(cpuPerRequestMs).toBeLessThan(CPU_PER_REQUEST_MAX_MS);

    // The lines reach this process through a pipe, a moment after the answers.
    const lines = await waitFor(
      () => {
        const found = requestLines().slice(linesBefore);
        return found.length >= REQUESTS_PER_SHAPE ? found : undefined;
      },
      5_000,
      `${REQUESTS_PER_SHAPE} request lines in the receiver's log`,
    );
    const logged = lines.map((line) => JSON.parse(line) as { req: { url: string } });
    for (const { req } of logged) {
      expect(req.url).not.toContain(EMAIL);
      expect(req.url.length).toBeLessThan(LOGGED_TEXT_MAX_CHARS + 40);
      expect(req.url).toMatch(/…\[\d+ more characters\]$/);
    }
  },
);
