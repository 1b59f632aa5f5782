"use client";
// The page's file transfers: one at a time (several dropped files go one
// after another), with what is moving, how far it got, and how it ended.
import { useCallback, useRef, useState } from "react";
import { downloadFile, uploadFile, type Progress } from "./files.ts";
import { formatBytes } from "./format.ts";

export interface TransferState {
  /** "Uploading notes.txt", "Downloading /etc/os-release". */
  label: string;
  progress?: Progress;
  /** Set once it ended, with what to tell the student. */
  outcome?: { ok: boolean; message: string };
}

export function useTransfers(maxBytes: number) {
  const [state, setState] = useState<TransferState>();
  const queue = useRef(Promise.resolve());

  const run = useCallback((label: string, work: (onProgress: (p: Progress) => void) => Promise<string>) => {
    queue.current = queue.current.then(async () => {
      setState({ label, progress: { done: 0, total: 0 } });
      const onProgress = (progress: Progress) => setState((s) => (s && !s.outcome ? { ...s, progress } : s));
      try {
        setState({ label, outcome: { ok: true, message: await work(onProgress) } });
      } catch (error) {
        setState({ label, outcome: { ok: false, message: error instanceof Error ? error.message : String(error) } });
      }
    });
  }, []);

  const upload = useCallback(
    (file: File) =>
      run(`Uploading ${file.name}`, async (onProgress) => {
        // Said at once, rather than after sending what the server would refuse.
        if (file.size > maxBytes) throw new Error(`${file.name} is ${formatBytes(file.size)}: uploads may be at most ${formatBytes(maxBytes)}`);
        const { path } = await uploadFile(file, onProgress);
        return `Uploaded to ${path}`;
      }),
    [maxBytes, run],
  );

  const download = useCallback(
    (path: string) =>
      run(`Downloading ${path}`, async (onProgress) => {
        const { name, bytes } = await downloadFile(path, onProgress);
        return `Downloaded ${name} (${formatBytes(bytes)})`;
      }),
    [run],
  );

  const dismiss = useCallback(() => setState((s) => (s?.outcome ? undefined : s)), []);
  return { state, busy: state !== undefined && !state.outcome, upload, download, dismiss };
}
