// The port preview's pure parts: its paths, its signed grants and cookies,
// and what it changes in requests and answers on their way through.
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../server/config.ts";
import { PreviewGrants } from "../../server/web/preview-grants.ts";
import { parsePreviewPath } from "../../server/web/preview-path.ts";
import { downstreamHeaders, rewriteHtml, rewriteLocation, rewriteSetCookie, upstreamHeaders } from "../../server/web/preview-rewrite.ts";

const SESSION = "AbCdEfGh12345678";
const to = { ip: "10.248.0.2", port: 8080, prefix: `/preview/${SESSION}/8080` };
const PREVIEW_HOST = "class.example:3001";

describe("preview paths", () => {
  it("reads the session, the port and the application's own path", () => {
    expect(parsePreviewPath(`/preview/${SESSION}/8080/a/b.html`)).toEqual({ session: SESSION, port: 8080, prefix: to.prefix, rest: "/a/b.html" });
    expect(parsePreviewPath(`/preview/${SESSION}/8080`)).toMatchObject({ rest: "" });
  });

  it("refuses what cannot be a session or a port", () => {
    for (const p of [`/preview/${SESSION}/0/`, `/preview/${SESSION}/65536/`, "/preview/short/80/", "/preview/bad%20id-long-enough/80/", `/preview/${SESSION}/`, "/other", `/preview/${SESSION}/80x/`]) {
      expect({ p, parsed: parsePreviewPath(p) }).toEqual({ p, parsed: undefined });
    }
  });
});

describe("the preview listener's port", () => {
  it("is the next port after the main one unless set, any free one when the main one is, and never the main one", () => {
    const config = (env: Record<string, string>) => loadConfig(env as NodeJS.ProcessEnv);
    expect(config({ PLAYGROUND_PORT: "3000" }).web.previewPort).toBe(3001);
    expect(config({ PLAYGROUND_PORT: "0" }).web.previewPort).toBe(0);
    expect(config({ PLAYGROUND_PORT: "3000", PLAYGROUND_PREVIEW_PORT: "8443" }).web.previewPort).toBe(8443);
    expect(() => config({ PLAYGROUND_PORT: "3000", PLAYGROUND_PREVIEW_PORT: "3000" })).toThrow(/a port of their own/);
    expect(() => config({ PLAYGROUND_PORT: "65535" })).toThrow(/PLAYGROUND_PREVIEW_PORT/);
  });
});

describe("preview grants and cookies", () => {
  it("checks what it signed, for the session and the purpose it was signed for, until it expires", () => {
    let now = 1_000_000;
    const grants = new PreviewGrants(() => now);
    const grant = grants.grant(SESSION);
    const cookie = grants.cookie(SESSION).value;
    expect(grants.checkGrant(grant)).toBe(SESSION);
    expect(grants.checkCookie(cookie)).toBe(SESSION);
    // Neither passes for the other.
    expect(grants.checkCookie(grant)).toBeUndefined();
    expect(grants.checkGrant(cookie)).toBeUndefined();
    // Another session's name on the same signature, another server's key, a later time.
    expect(grants.checkGrant(grant.replace(SESSION, "ZZZZZZZZ12345678"))).toBeUndefined();
    expect(new PreviewGrants(() => now).checkGrant(grant)).toBeUndefined();
    now += 61_000;
    expect(grants.checkGrant(grant)).toBeUndefined();
    expect(grants.checkCookie(cookie)).toBe(SESSION);
    now += 12 * 3600_000;
    expect(grants.checkCookie(cookie)).toBeUndefined();
  });

  it("ignores anything that is not of its shape", () => {
    const grants = new PreviewGrants();
    for (const junk of ["", "x", `${SESSION}.1.`, `${SESSION}.99999999999999.${"A".repeat(43)}`, "a.b.c"]) expect(grants.checkGrant(junk)).toBeUndefined();
  });
});

describe("requests on their way to the container", () => {
  it("drops the playground's cookies and hop-by-hop headers, names the container as the host, and says where the browser was", () => {
    const headers = upstreamHeaders(
      { host: PREVIEW_HOST, cookie: "pg_session=secret; app=1; pg_preview=grant; other=2", connection: "keep-alive", "keep-alive": "timeout=5", "accept-encoding": "gzip", "x-forwarded-for": "6.6.6.6", accept: "text/html" },
      to,
      { host: PREVIEW_HOST, proto: "https", address: "192.168.1.9" },
    );
    expect(headers).toEqual({
      accept: "text/html",
      cookie: "app=1; other=2",
      host: "10.248.0.2:8080",
      "x-forwarded-host": PREVIEW_HOST,
      "x-forwarded-proto": "https",
      "x-forwarded-for": "192.168.1.9",
      "x-forwarded-prefix": to.prefix,
    });
    expect(upstreamHeaders({ cookie: "pg_session=secret" }, to, { host: "", proto: "http", address: "" }).cookie).toBeUndefined();
  });

  it("keeps a WebSocket's upgrade", () => {
    const headers = upstreamHeaders({ host: PREVIEW_HOST, connection: "Upgrade", upgrade: "websocket", "sec-websocket-key": "k" }, to, { host: PREVIEW_HOST, proto: "http", address: "" }, true);
    expect(headers).toMatchObject({ connection: "Upgrade", upgrade: "websocket", "sec-websocket-key": "k" });
  });
});

describe("answers on their way back", () => {
  it("puts redirects to the application's own paths under the prefix, and leaves others alone", () => {
    expect(rewriteLocation("/login?next=/x#top", to, PREVIEW_HOST)).toBe(`${to.prefix}/login?next=/x#top`);
    expect(rewriteLocation("http://10.248.0.2:8080/dir/", to, PREVIEW_HOST)).toBe(`${to.prefix}/dir/`);
    expect(rewriteLocation(`http://${PREVIEW_HOST}/dir/`, to, PREVIEW_HOST)).toBe(`${to.prefix}/dir/`);
    expect(rewriteLocation(`${to.prefix}/already`, to, PREVIEW_HOST)).toBe(`${to.prefix}/already`);
    expect(rewriteLocation("relative/path", to, PREVIEW_HOST)).toBe("relative/path");
    expect(rewriteLocation("//elsewhere.example/x", to, PREVIEW_HOST)).toBe("//elsewhere.example/x");
    expect(rewriteLocation("https://elsewhere.example/x", to, PREVIEW_HOST)).toBe("https://elsewhere.example/x");
  });

  it("keeps the application's cookies under the prefix and on this host, and drops any named like the playground's", () => {
    expect(rewriteSetCookie("sid=1; Path=/; HttpOnly", to.prefix)).toBe(`sid=1; HttpOnly; Path=${to.prefix}/`);
    expect(rewriteSetCookie("sid=1; path=/app; Domain=example.org; Secure", to.prefix)).toBe(`sid=1; Secure; Path=${to.prefix}/app`);
    expect(rewriteSetCookie("sid=1", to.prefix)).toBe(`sid=1; Path=${to.prefix}/`);
    expect(rewriteSetCookie(`sid=1; Path=${to.prefix}/x`, to.prefix)).toBe(`sid=1; Path=${to.prefix}/x`);
    expect(rewriteSetCookie("pg_session=stolen; Path=/", to.prefix)).toBeUndefined();
    expect(rewriteSetCookie("PG_preview=x", to.prefix)).toBeUndefined();
  });

  it("drops headers that would act on the whole host, and hop-by-hop ones", () => {
    const headers = downstreamHeaders(
      {
        "content-type": "text/plain",
        "strict-transport-security": "max-age=31536000",
        "clear-site-data": '"cookies"',
        "alt-svc": 'h3=":443"',
        connection: "close",
        "set-cookie": ["a=1; Path=/", "pg_session=x"],
        location: "/next",
      },
      to,
      PREVIEW_HOST,
    );
    expect(headers).toEqual({ "content-type": "text/plain", "set-cookie": [`a=1; Path=${to.prefix}/`], location: `${to.prefix}/next` });
  });

  it("puts absolute links of HTML under the prefix, and leaves other links alone", () => {
    const html = `<a href="/docs">d</a> <img src='/logo.png'> <form action="/post"></form> <a href="//cdn.example/x">c</a> <a href="rel">r</a> <a href="https://x.example/">x</a>`;
    expect(rewriteHtml(html, to.prefix)).toBe(
      `<a href="${to.prefix}/docs">d</a> <img src='${to.prefix}/logo.png'> <form action="${to.prefix}/post"></form> <a href="//cdn.example/x">c</a> <a href="rel">r</a> <a href="https://x.example/">x</a>`,
    );
  });
});
