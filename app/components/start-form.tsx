"use client";
// The student's first screen: what they are about to get, an optional name, Start.
import { useState, type FormEvent } from "react";

interface Props {
  connected: boolean;
  error?: string;
  onStart(name: string): void;
}

export function StartForm({ connected, error, onStart }: Props) {
  const [name, setName] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onStart(name);
  };
  return (
    <main className="center">
      <form className="card start-card" onSubmit={submit}>
        <h1>Container playground</h1>
        <p className="lead">
          Your own Linux container: Alpine, 256&nbsp;MB, its own network. A root shell in your browser, for as long as
          you need it; nothing you do there can touch anyone else&apos;s.
        </p>
        <label htmlFor="student-name">Your name (optional, shown to your instructor)</label>
        <input
          id="student-name"
          name="name"
          autoComplete="nickname"
          maxLength={40}
          value={name}
          onChange={(event) => setName(event.target.value)}
          placeholder="e.g. Ada"
        />
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
