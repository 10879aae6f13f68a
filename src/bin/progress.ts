import { Bar, Presets } from 'cli-progress';

import type { Progress } from '../sync/progress.ts';

/** How often a line is written when the output is not a terminal. */
const PLAIN_INTERVAL_MS = 5_000;

/**
 * cli-progress's bar (done/total, rate, ETA) on a terminal; elsewhere, its plain-line mode:
 * a line every few seconds that a log collector can keep.
 */
export function createProgress(label: string): Progress {
  const stream = process.stderr;
  const terminal = Boolean(stream.isTTY);
  const bar = new Bar(
    {
      stream,
      format: terminal
        ? `${label} [{bar}] {value}/{total} users | {rate} users/s | ETA {eta_formatted}`
        : `${label}: {value}/{total} users ({percentage}%), {rate} users/s, eta {eta}s`,
      etaBuffer: 50,
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: PLAIN_INTERVAL_MS,
    },
    Presets.shades_classic,
  );
  let startedAt = Date.now();
  let startDone = 0;
  let running = false;
  let last = { done: 0, total: 0 };
  const rate = (done: number) =>
    Math.round((done - startDone) / Math.max(0.001, (Date.now() - startedAt) / 1000));
  return {
    start(total, done) {
      startedAt = Date.now();
      startDone = done;
      last = { done, total };
      running = true;
      if (!terminal) {
        stream.write(
          `${label}: ${total} users in Clerk${done ? `, resuming after ${done}` : ''}\n`,
        );
      }
      bar.start(total, done, { rate: 0 });
    },
    update(done, total) {
      last = { done, total };
      bar.setTotal(total);
      bar.update(done, { rate: rate(done) });
    },
    note(message) {
      if (terminal) bar.stop();
      stream.write(`${message}\n`);
      // A stopped bar ignores updates: draw it again below the message.
      if (terminal && running) bar.start(last.total, last.done, { rate: rate(last.done) });
    },
    stop() {
      running = false;
      bar.stop();
    },
  };
}
