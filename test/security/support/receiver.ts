import { afterAll, beforeAll } from 'vitest';
import type { ServiceProcess } from '../../faults/support/services.ts';
import { type FaultStack, startFaultStack } from '../../faults/support/stack.ts';

export interface ReceiverUnderTest {
  stack: FaultStack;
  receiver: ServiceProcess;
}

/**
 * A fault stack of the test file's own (database, redis-server, queue) and one receiver process
 * on it, started before the file's tests and stopped after them. Read its fields inside tests.
 */
export function receiverUnderTest(env: Record<string, string> = {}): ReceiverUnderTest {
  const running = {} as ReceiverUnderTest;
  beforeAll(async () => {
    running.stack = await startFaultStack();
    running.receiver = await running.stack.startReceiver(env);
  });
  afterAll(() => running.stack?.stop());
  return running;
}
