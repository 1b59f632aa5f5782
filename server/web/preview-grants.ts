// Who may see a session's port preview, as signed tokens the preview origin
// can check without a database: "this browser may see session S until T".
//
//   a grant    is made by the main origin for a browser it has checked (the
//              student's session cookie, or the instructor's token), lives a
//              minute, and travels once in a redirect's URL to the preview
//              origin, which trades it for
//   a cookie   HttpOnly, limited to /preview/S/, valid for hours: what the
//              preview origin accepts on every later request.
// The two are signed for their own purpose, so neither passes for the other.
// The key is made when the server starts: a restart makes old cookies
// worthless (the page's link grants a new one; a student's own session
// cookie is accepted anyway).
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export const PREVIEW_COOKIE = "pg_preview";
/** The query parameter a grant comes in. */
export const GRANT_PARAM = "pg_grant";

const GRANT_TTL_MS = 60_000;
const COOKIE_TTL_MS = 12 * 3600_000;

type Purpose = "grant" | "cookie";

export class PreviewGrants {
  private readonly key = randomBytes(32);

  constructor(private readonly now: () => number = Date.now) {}

  /** A grant for `session`, to put in the preview origin's URL. */
  grant(session: string): string {
    return this.sign("grant", session, GRANT_TTL_MS);
  }

  /** The session a grant is for, if it is one of ours and still fresh. */
  checkGrant(token: string): string | undefined {
    return this.check("grant", token);
  }

  /** The preview cookie's value for `session`, and how long it lives. */
  cookie(session: string): { value: string; maxAgeSeconds: number } {
    return { value: this.sign("cookie", session, COOKIE_TTL_MS), maxAgeSeconds: COOKIE_TTL_MS / 1000 };
  }

  /** The session a preview cookie is for, if it is one of ours and still fresh. */
  checkCookie(value: string): string | undefined {
    return this.check("cookie", value);
  }

  private sign(purpose: Purpose, session: string, ttlMs: number): string {
    const body = `${session}.${this.now() + ttlMs}`;
    return `${body}.${this.mac(purpose, body)}`;
  }

  private check(purpose: Purpose, token: string): string | undefined {
    const m = /^([A-Za-z0-9_-]{8,64})\.(\d{1,16})\.([A-Za-z0-9_-]{43})$/.exec(token);
    if (!m) return undefined;
    const expected = Buffer.from(this.mac(purpose, `${m[1]}.${m[2]}`));
    const given = Buffer.from(m[3]);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    return Number(m[2]) > this.now() ? m[1] : undefined;
  }

  private mac(purpose: Purpose, body: string): string {
    return createHmac("sha256", this.key).update(`${purpose}:${body}`).digest("base64url");
  }
}
