/** What backfill and reconcile report as they read Clerk's users; the commands draw it (src/bin/progress.ts). */
export interface Progress {
  start(total: number, done: number): void;
  update(done: number, total: number): void;
  note(message: string): void;
  stop(): void;
}
