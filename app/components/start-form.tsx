"use client";
// The student's first screen: what they are about to get, the room's join
// code (when it has one: remembered by this browser once typed), an optional
// name, and Start. When this browser kept files under the name typed, Start
// brings them back, unless "start afresh" is ticked.
import { useState, type FormEvent } from "react";
import { MAX_JOIN_CODE_CHARS, MAX_STUDENT_NAME_CHARS, type KeptWork } from "../../server/common/protocol.ts";
import { formatBytes, formatClock } from "../lib/format.ts";

export interface StartChoice {
  name: string;
  code: string;
  fresh: boolean;
}

interface Props {
  connected: boolean;
  error?: string;
  /** The room wants a join code ("wrong": the last one sent was not it). */
  code?: "needed" | "wrong";
  /** The code this browser used before. */
  rememberedCode: string;
  kept: KeptWork[];
  onStart(choice: StartChoice): void;
}

export function StartForm({ connected, error, code, rememberedCode, kept, onStart }: Props) {
  const [name, setName] = useState("");
  const [joinCode, setJoinCode] = useState(rememberedCode);
  const [fresh, setFresh] = useState(false);
  const mine = kept.find((k) => k.studentName === name.trim());
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onStart({ name, code: joinCode, fresh: fresh && mine !== undefined });
  };
  return (
    <main className="center">
      <form className="card start-card" onSubmit={submit}>
        <h1>Container playground</h1>
        <p className="lead">
          Your own Linux container: Alpine, 256&nbsp;MB, its own network. A root shell in your browser, for as long as
          you need it; nothing you do there can touch anyone else&apos;s.
        </p>
        {code && (
          <>
            <label htmlFor="join-code">Join code (your instructor shows it)</label>
            <input
              id="join-code"
              name="code"
              autoComplete="off"
              autoCapitalize="characters"
              spellCheck={false}
              maxLength={MAX_JOIN_CODE_CHARS}
              value={joinCode}
              onChange={(event) => setJoinCode(event.target.value)}
              className={`join-code ${code === "wrong" ? "invalid" : ""}`}
              aria-invalid={code === "wrong"}
              placeholder="e.g. K7PQ2M"
            />
          </>
        )}
        <label htmlFor="student-name">Your name (optional, shown to your instructor)</label>
        <input
          id="student-name"
          name="name"
          autoComplete="nickname"
          maxLength={MAX_STUDENT_NAME_CHARS}
          value={name}
          onChange={(event) => setName(event.target.value)}
          placeholder="e.g. Ada"
        />
        {mine && (
          <div className="kept" data-testid="kept-work">
            <p>
              Your files from last time ({formatBytes(mine.bytes)}, saved {formatClock(mine.savedAt)}) come back when you start.
            </p>
            <label className="checkbox">
              <input type="checkbox" checked={fresh} onChange={(event) => setFresh(event.target.checked)} /> Start afresh instead
            </label>
          </div>
        )}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={!connected}>
          Start
        </button>
        {!connected && <p className="hint">Connecting to the playground…</p>}
      </form>
    </main>
  );
}
