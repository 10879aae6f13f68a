import { Migration } from '@mikro-orm/migrations';

/** Resumable backfills: how far each long-running command has committed. */
export class Migration20261125030000_sync_checkpoints extends Migration {
  override up(): void {
    this.addSql(`create table "sync_checkpoints" (
      "name" varchar(50) not null,
      "next_offset" int not null,
      "updated_at" timestamptz not null default now(),
      primary key ("name"));`);
  }

  override down(): void {
    this.addSql('drop table if exists "sync_checkpoints";');
  }
}
