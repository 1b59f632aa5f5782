"use client";
// What the instructor does to the whole room: a notice on every student
// page (until taken down), more time for every session, or the end of all of them.
import { useState, type FormEvent } from "react";
import type { Notice } from "../../server/common/protocol.ts";

interface Props {
  notice: Notice | null;
  liveCount: number;
  onNotice(text: string): void;
  onExtendAll(minutes: number): void;
  onEndAll(): void;
}

/** What "+ time" gives, for one session or all. */
export const EXTEND_MINUTES = 15;

export function RoomControls({ notice, liveCount, onNotice, onExtendAll, onEndAll }: Props) {
  const [text, setText] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!text.trim()) return;
    onNotice(text);
    setText("");
  };
  return (
    <section className="room-controls" data-testid="room-controls">
      <form className="notice-form" onSubmit={submit}>
        <input aria-label="Notice to the room" placeholder="A notice for every student's page" maxLength={500} value={text} onChange={(event) => setText(event.target.value)} />
        <button className="small" type="submit" disabled={!text.trim()}>
          Show to the room
        </button>
      </form>
      {notice && (
        <p className="notice-shown" data-testid="notice-shown">
          Showing: <strong>{notice.text}</strong>{" "}
          <button className="link" onClick={() => onNotice("")}>
            Take down
          </button>
        </p>
      )}
      <span className="spacer" />
      <button className="small" onClick={() => onExtendAll(EXTEND_MINUTES)} disabled={liveCount === 0}>
        +{EXTEND_MINUTES} min for all
      </button>
      <button className="danger small" onClick={onEndAll} disabled={liveCount === 0}>
        End all
      </button>
    </section>
  );
}
