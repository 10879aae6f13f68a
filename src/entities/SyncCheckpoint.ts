import { defineEntity, p } from '@mikro-orm/core';

/**
 * Where a long-running command (the backfill) got to: written in the same transaction as the
 * rows of the page it records, so a resumed run starts right after the last committed page.
 */
export const SyncCheckpointSchema = defineEntity({
  name: 'SyncCheckpoint',
  tableName: 'sync_checkpoints',
  properties: {
    name: p.string().length(50).primary(),
    nextOffset: p.integer(),
    updatedAt: p
      .datetime()
      .columnType('timestamptz')
      .defaultRaw('now()')
      .onUpdate(() => new Date()),
  },
});

export class SyncCheckpoint extends SyncCheckpointSchema.class {}
SyncCheckpointSchema.setClass(SyncCheckpoint);
