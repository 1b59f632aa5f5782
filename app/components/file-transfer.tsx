"use client";
// Files in and out of the student's container: a button that uploads into
// the directory their terminal is in (dropping a file on the terminal does
// the same), a field that downloads a file by its path, and how the transfer
// goes.
import { useRef, useState, type FormEvent } from "react";
import { formatBytes } from "../lib/format.ts";
import type { TransferState } from "../lib/use-transfers.ts";

interface Props {
  state?: TransferState;
  busy: boolean;
  onUpload(file: File): void;
  onDownload(path: string): void;
  onDismiss(): void;
}

export function FileTransfer({ state, busy, onUpload, onDownload, onDismiss }: Props) {
  const picker = useRef<HTMLInputElement>(null);
  const [path, setPath] = useState("");

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (path.trim()) onDownload(path.trim());
  };

  return (
    <div className="file-transfer">
      <button className="small" onClick={() => picker.current?.click()} title="Upload a file into your terminal's working directory (or drop it on the terminal)">
        Upload a file
      </button>
      <input
        ref={picker}
        type="file"
        multiple
        hidden
        data-testid="upload-input"
        onChange={(event) => {
          for (const file of Array.from(event.target.files ?? [])) onUpload(file);
          event.target.value = "";
        }}
      />
      <form className="download" onSubmit={submit}>
        <input value={path} onChange={(event) => setPath(event.target.value)} placeholder="path in the container" aria-label="File to download" spellCheck={false} />
        <button className="small" type="submit" disabled={busy || !path.trim()}>
          Download
        </button>
      </form>
      {state && <TransferStatus state={state} onDismiss={onDismiss} />}
    </div>
  );
}

function TransferStatus({ state, onDismiss }: { state: TransferState; onDismiss(): void }) {
  if (state.outcome) {
    return (
      <span className={`transfer ${state.outcome.ok ? "ok" : "failed"}`} role="status" data-testid="transfer-status">
        {state.outcome.message}
        <button className="link" onClick={onDismiss} aria-label="Dismiss">
          ×
        </button>
      </span>
    );
  }
  const { done = 0, total = 0 } = state.progress ?? {};
  return (
    <span className="transfer" role="status" data-testid="transfer-status">
      {state.label}
      {total > 0 ? <progress max={total} value={done} /> : null}
      <span className="muted">{total > 0 ? `${Math.floor((100 * done) / total)}%` : formatBytes(done)}</span>
    </span>
  );
}
