import { Bar, Presets } from 'cli-progress';

export interface Progress {
  start(total: number, done: number): void;
  update(done: number, total: number): void;
  note(message: string): void;
  stop(): void;
}

const PLAIN_INTERVAL_MS = 5_000;

/**
 * A progress bar (done/total, rate, ETA) on a terminal; elsewhere, a plain line every few
 * seconds that a log collector can keep.
 */
export function createProgress(
  label: string,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  return stream.isTTY ? barProgress(label, stream) : plainProgress(label, stream);
}

function barProgress(label: string, stream: NodeJS.WriteStream): Progress {
  const startedAt = Date.now();
  let startDone = 0;
  const bar = new Bar(
    {
      stream,
      format: `${label} [{bar}] {value}/{total} users | {rate} users/s | ETA {eta_formatted}`,
      etaBuffer: 50,
      hideCursor: true,
    },
    Presets.shades_classic,
  );
  const rate = (done: number) =>
    Math.round((done - startDone) / Math.max(0.001, (Date.now() - startedAt) / 1000));
  let running = false;
  let last = { done: 0, total: 0 };
  return {
    start(total, done) {
      startDone = done;
      last = { done, total };
      running = true;
      bar.start(total, done, { rate: 0 });
    },
    update(done, total) {
      last = { done, total };
      bar.setTotal(total);
      bar.update(done, { rate: rate(done) });
    },
    note(message) {
      bar.stop();
      stream.write(`${message}\n`);
      // A stopped bar ignores updates: draw it again below the message.
      if (running) bar.start(last.total, last.done, { rate: rate(last.done) });
    },
    stop() {
      running = false;
      bar.stop();
    },
  };
}

function plainProgress(label: string, stream: NodeJS.WriteStream): Progress {
  const startedAt = Date.now();
  let startDone = 0;
  let lastLineAt = 0;
  return {
    start(total, done) {
      startDone = done;
      stream.write(`${label}: ${total} users in Clerk${done ? `, resuming after ${done}` : ''}\n`);
    },
    update(done, total) {
      const now = Date.now();
      if (now - lastLineAt < PLAIN_INTERVAL_MS && done < total) return;
      lastLineAt = now;
      const rate = (done - startDone) / Math.max(0.001, (now - startedAt) / 1000);
      const eta = rate > 0 ? Math.ceil((total - done) / rate) : 0;
      const percent = total ? Math.floor((done / total) * 100) : 100;
      stream.write(
        `${label}: ${done}/${total} users (${percent}%), ${Math.round(rate)} users/s, eta ${eta}s\n`,
      );
    },
    note: (message) => stream.write(`${message}\n`),
    stop() {},
  };
}
