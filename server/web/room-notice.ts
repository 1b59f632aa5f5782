// The instructor's notice to the room ("five minutes left", "look at the
// projector"): one at a time, shown on every student page, to students who
// join later too, until the instructor takes it down. Kept in the record
// (the Setting "room.notice"), so a restarted server still shows it.
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Notice } from "../common/protocol.ts";
import type { Db } from "../db.ts";

const KEY = "room.notice";

export class RoomNotice extends EventEmitter<{ changed: [notice: Notice | null] }> {
  private constructor(
    private readonly db: Db,
    private notice: Notice | null,
  ) {
    super();
  }

  static async load(db: Db): Promise<RoomNotice> {
    const row = await db.setting.findUnique({ where: { key: KEY } });
    let notice: Notice | null = null;
    try {
      const stored = row ? (JSON.parse(row.value) as Notice) : null;
      if (stored && typeof stored.id === "string" && typeof stored.text === "string" && typeof stored.at === "string") notice = stored;
    } catch {
      // An unreadable record shows no notice.
    }
    return new RoomNotice(db, notice);
  }

  get current(): Notice | null {
    return this.notice;
  }

  /** A new notice (the text was validated and trimmed); an empty text takes the notice down. */
  async set(text: string): Promise<Notice | null> {
    this.notice = text ? { id: randomBytes(6).toString("hex"), text, at: new Date().toISOString() } : null;
    if (this.notice) await this.db.setting.upsert({ where: { key: KEY }, create: { key: KEY, value: JSON.stringify(this.notice) }, update: { value: JSON.stringify(this.notice) } });
    else await this.db.setting.deleteMany({ where: { key: KEY } });
    this.emit("changed", this.notice);
    return this.notice;
  }
}
