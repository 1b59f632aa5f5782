// A session's recording, fetched with the instructor's token (it travels in a
// header, never in a URL): as text for the replay, or saved as a .cast file.
import { parseCast, type Cast } from "../../server/common/asciicast.ts";

function url(sessionId: string): string {
  return `/api/recordings/${encodeURIComponent(sessionId)}.cast`;
}

async function fetchCast(token: string, sessionId: string): Promise<Blob> {
  const res = await fetch(url(sessionId), { headers: { authorization: `Bearer ${token}` }, cache: "no-store" });
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { error?: string };
    throw new Error(body.error ?? `the server answered ${res.status}`);
  }
  return res.blob();
}

export async function loadRecording(token: string, sessionId: string): Promise<Cast> {
  return parseCast(await (await fetchCast(token, sessionId)).text());
}

/** Saves the recording through the browser's download, as `playground-<name>-<session>.cast`. */
export async function saveRecording(token: string, sessionId: string, studentName?: string): Promise<void> {
  const blob = await fetchCast(token, sessionId);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  const name = (studentName ?? "").replace(/[^\p{L}\p{N}_-]+/gu, "-").replace(/^-|-$/g, "");
  link.download = `playground-${name ? `${name}-` : ""}${sessionId}.cast`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}
