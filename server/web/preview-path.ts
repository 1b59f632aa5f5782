// Where a port preview lives: /preview/<session>/<port>/<the application's
// own path>, on the preview origin (and, to be sent there, on the main one).
import { SessionId } from "../common/protocol.ts";

export interface PreviewPath {
  session: string;
  port: number;
  /** "/preview/<session>/<port>", without a trailing slash. */
  prefix: string;
  /** The application's own path ("/" at least), without the query. */
  rest: string;
}

/** The preview a path is for; undefined when it is not a preview's path (or names an impossible session or port). */
export function parsePreviewPath(pathname: string): PreviewPath | undefined {
  const m = /^\/preview\/([^/]+)\/(\d{1,5})(\/.*)?$/.exec(pathname);
  if (!m || !SessionId.safeParse(m[1]).success) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { session: m[1], port, prefix: previewPrefix(m[1], port), rest: m[3] ?? "" };
}

export function previewPrefix(session: string, port: number): string {
  return `/preview/${session}/${port}`;
}
