"use client";
// Asks the instructor for the token printed in the server's log.
import { useState, type FormEvent } from "react";

export function TokenForm({ error, onToken }: { error?: string; onToken(token: string): void }) {
  const [token, setToken] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (token.trim()) onToken(token.trim());
  };
  return (
    <main className="center">
      <form className="card" onSubmit={submit}>
        <h1>Instructor</h1>
        <p className="lead">
          Enter the instructor token. It is set by <code>PLAYGROUND_INSTRUCTOR_TOKEN</code>, or generated at first start
          and printed in the server&apos;s log. This tab keeps it until you close it.
        </p>
        <label htmlFor="token">Token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          value={token}
          onChange={(event) => setToken(event.target.value)}
          autoFocus
        />
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={!token.trim()}>
          Open the session list
        </button>
      </form>
    </main>
  );
}
