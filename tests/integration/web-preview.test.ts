// Port previews against the real server, its preview listener and a real
// container (the tools image: busybox httpd, and ws-echo, a WebSocket echo
// server of the tests' own):
//   - the student's page is told which ports the container listens on,
//     read from its network namespace;
//   - the main origin sends the student's browser on to the preview origin
//     with a grant, which becomes a cookie there; another browser gets
//     nothing, on either origin;
//   - HTTP and WebSocket reach the container's servers; redirects, cookies
//     and absolute links are put under the prefix; the playground's cookies
//     never reach the container, and a preview cannot set one of them nor
//     act on the whole host;
//   - the instructor gets a grant through the API;
//   - the main server's socket.io refuses a connection from the preview origin.
import http from "node:http";
import net from "node:net";
import { io } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { PortInfo, SessionInfo } from "../../server/common/protocol.ts";
import { INSTRUCTOR_TOKEN, newCookieSecret, startServer, type Student, type TestServer } from "../fixtures/web-server.ts";

let server: TestServer;
let ada: Student;
let info: SessionInfo;
/** ada's preview cookie, once redeemed. */
let previewCookie: string;

beforeAll(async () => {
  const registry = inject("registry");
  server = await startServer(registry, { PLAYGROUND_IMAGE: `${registry}/library/tools:latest` });
  await server.waitForLog(/^default image ready$/);
  ada = await server.student();
  info = await ada.start("ada");
  await ada.shell(
    [
      "mkdir -p /srv/www/dir /srv/www/cgi-bin",
      `echo '<a href="/dir/">in a dir</a> <img src="/logo.png"> hello from the container' > /srv/www/index.html`,
      "echo in-dir > /srv/www/dir/index.html",
      "httpd -p 8080 -h /srv/www",
      "httpd -p 127.0.0.1:8083 -h /srv/www",
      "(ws-echo 8081 >/dev/null 2>&1 &)",
      "cd /srv/www/cgi-bin",
    ].join(" && "),
  );
  // A CGI script that sets cookies and headers a preview must not pass on as they are (sent in as a file: no quoting).
  const cgi = [
    "#!/bin/sh",
    "printf 'Content-Type: text/plain\\r\\n'",
    "printf 'Set-Cookie: app=1; Path=/; Domain=example.org\\r\\n'",
    "printf 'Set-Cookie: pg_session=planted; Path=/\\r\\n'",
    "printf 'Strict-Transport-Security: max-age=1000\\r\\n'",
    "printf 'Clear-Site-Data: \"cookies\"\\r\\n\\r\\n'",
    "echo from cgi",
    "",
  ].join("\n");
  const uploaded = await server.api("/api/files/upload?name=cookies", { method: "POST", body: cgi, headers: adaCookie() });
  expect(uploaded.status).toBe(200);
  await ada.shell("chmod +x cookies && cd /");
});
afterAll(async () => {
  ada?.close();
  await server?.stop();
});

/** A plain HTTP GET (no redirects followed): status, headers, body. */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      })
      .on("error", reject);
  });
}

const prefix = () => `/preview/${info.id}`;
const adaCookie = () => ({ cookie: `pg_session=${ada.cookie}` });

/** Opens a WebSocket by hand through the preview listener; resolves with the reply to "hi", or the refusal's status line. */
function websocket(path: string, cookie: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const url = new URL(server.previewUrl);
    const socket = net.connect(Number(url.port), url.hostname, () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: ${cookie}\r\n\r\n`,
      );
    });
    let data = Buffer.alloc(0);
    let upgraded = false;
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (!upgraded) {
        const end = data.indexOf("\r\n\r\n");
        if (end < 0) return;
        const status = data.subarray(0, data.indexOf("\r\n")).toString();
        if (!status.includes(" 101 ")) {
          socket.destroy();
          return resolve(status);
        }
        upgraded = true;
        data = data.subarray(end + 4);
        const mask = Buffer.from([1, 2, 3, 4]);
        const payload = Buffer.from("hi");
        socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]))]));
      }
      if (upgraded && data.length >= 2 && data.length >= 2 + (data[1] & 127)) {
        socket.destroy();
        resolve(data.subarray(2, 2 + (data[1] & 127)).toString());
      }
    });
    socket.on("error", reject);
  });
}

describe("the ports a container listens on", () => {
  it("are told to the student's page, with those bound to loopback only marked unreachable", async () => {
    let ports: PortInfo[] = [];
    for (let i = 0; i < 50 && ports.length < 3; i++) {
      ada.socket.emit("ports");
      ports = (await ada.next("ports"))[0] as PortInfo[];
      if (ports.length < 3) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ports.map((p) => [p.port, p.reachable])).toEqual([
      [8080, true],
      [8081, true],
      [8083, false],
    ]);
    // The instructor's list has the reachable ones.
    const row = (await server.rows()).find((r) => r.id === info.id);
    expect(row?.ports).toEqual([8080, 8081]);
  });
});

describe("getting in", () => {
  it("sends the student's browser from the main origin to the preview origin with a grant that becomes a cookie there", async () => {
    const entry = await get(`${server.url}${prefix()}/8080/?q=1`, adaCookie());
    expect(entry.status).toBe(303);
    const grantUrl = new URL(entry.headers.location!);
    expect(grantUrl.origin).toBe(server.previewUrl);
    expect(grantUrl.pathname).toBe(`${prefix()}/8080/`);
    expect(grantUrl.searchParams.get("q")).toBe("1");
    expect(grantUrl.searchParams.get("pg_grant")).toBeTruthy();

    const redeemed = await get(grantUrl.toString());
    expect(redeemed.status).toBe(303);
    expect(redeemed.headers.location).toBe(`${prefix()}/8080/?q=1`);
    const setCookie = redeemed.headers["set-cookie"]![0];
    expect(setCookie).toMatch(new RegExp(`^pg_preview=[^;]+; Path=${prefix()}/; HttpOnly; SameSite=Lax; Max-Age=\\d+$`));
    previewCookie = setCookie.split(";")[0];

    const page = await get(`${server.previewUrl}${prefix()}/8080/?q=1`, { cookie: previewCookie });
    expect(page.status).toBe(200);
    expect(page.body).toContain("hello from the container");
  });

  it("refuses another browser, on both origins, and a grant used for another session", async () => {
    const stranger = { cookie: `pg_session=${newCookieSecret()}` };
    expect((await get(`${server.url}${prefix()}/8080/`, stranger)).status).toBe(403);
    expect((await get(`${server.url}${prefix()}/8080/`)).status).toBe(403);
    const page = await get(`${server.previewUrl}${prefix()}/8080/`, stranger);
    expect(page.status).toBe(403);
    expect(page.body).not.toContain("hello from the container");
    expect((await get(`${server.previewUrl}${prefix()}/8080/`)).status).toBe(403);
    expect((await get(`${server.previewUrl}${prefix()}/8080/?pg_grant=forged`)).status).toBe(403);
    // Bob's own grant is for bob's session only.
    const bob = await server.student();
    const bobInfo = await bob.start("bob");
    try {
      const bobEntry = await get(`${server.url}/preview/${bobInfo.id}/8080/`, { cookie: `pg_session=${bob.cookie}` });
      const bobGrant = new URL(bobEntry.headers.location!).searchParams.get("pg_grant")!;
      expect((await get(`${server.previewUrl}${prefix()}/8080/?pg_grant=${bobGrant}`)).status).toBe(403);
      expect((await get(`${server.previewUrl}${prefix()}/8080/`, { cookie: `pg_session=${bob.cookie}` })).status).toBe(403);
    } finally {
      bob.socket.emit("end");
      await bob.next("ended");
      bob.close();
    }
  });

  it("lets the student in with their own session cookie, which browsers send to every port of the host", async () => {
    const page = await get(`${server.previewUrl}${prefix()}/8080/`, adaCookie());
    expect(page.status).toBe(200);
    expect(page.body).toContain("hello from the container");
  });

  it("gives the instructor a grant through the API, and nobody without the token", async () => {
    const refused = await server.api("/api/preview", { method: "POST", body: JSON.stringify({ session: info.id, port: 8080 }) });
    expect(refused.status).toBe(401);
    const res = await server.api("/api/preview", {
      method: "POST",
      headers: { authorization: `Bearer ${INSTRUCTOR_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ session: info.id, port: 8080 }),
    });
    expect(res.status).toBe(200);
    const { url } = (await res.json()) as { url: string };
    expect(new URL(url).origin).toBe(server.previewUrl);
    const redeemed = await get(url);
    const cookie = redeemed.headers["set-cookie"]![0].split(";")[0];
    expect((await get(`${server.previewUrl}${prefix()}/8080/`, { cookie })).body).toContain("hello from the container");
  });
});

describe("through the preview", () => {
  it("puts redirects and absolute links under the prefix", async () => {
    const redirect = await get(`${server.previewUrl}${prefix()}/8080/dir`, { cookie: previewCookie });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.location).toBe(`${prefix()}/8080/dir/`);
    expect((await get(`${server.previewUrl}${prefix()}/8080/dir/`, { cookie: previewCookie })).body).toBe("in-dir\n");
    const index = await get(`${server.previewUrl}${prefix()}/8080/`, { cookie: previewCookie });
    expect(index.body).toContain(`<a href="${prefix()}/8080/dir/">`);
    expect(index.body).toContain(`<img src="${prefix()}/8080/logo.png">`);
    expect(Number(index.headers["content-length"])).toBe(Buffer.byteLength(index.body));
    // The prefix needs its slash.
    const bare = await get(`${server.previewUrl}${prefix()}/8080`, { cookie: previewCookie });
    expect([bare.status, bare.headers.location]).toEqual([308, `${prefix()}/8080/`]);
  });

  it("keeps the application's cookies under the prefix, drops one named like the playground's, and headers that act on the whole host", async () => {
    const r = await get(`${server.previewUrl}${prefix()}/8080/cgi-bin/cookies`, { cookie: previewCookie });
    expect(r.status).toBe(200);
    expect(r.body).toBe("from cgi\n");
    expect(r.headers["set-cookie"]).toEqual([`app=1; Path=${prefix()}/8080/`]);
    expect(r.headers["strict-transport-security"]).toBeUndefined();
    expect(r.headers["clear-site-data"]).toBeUndefined();
  });

  it("never lets the playground's cookies reach the container, and names the container as the host", async () => {
    // nc takes the request as the container's server would, and answers nothing: the browser gives up, nc ends.
    const listening = ada.shell("nc -l -p 8082 > /tmp/request.txt");
    await new Promise((r) => setTimeout(r, 500));
    await new Promise<void>((resolve) => {
      const req = http.get(`${server.previewUrl}${prefix()}/8082/seen?x=1`, { headers: { cookie: `${previewCookie}; pg_session=${ada.cookie}; mine=kept` } });
      req.on("error", () => resolve());
      setTimeout(() => req.destroy(), 1000);
    });
    await listening;
    const request = (await ada.shell("cat /tmp/request.txt")).toLowerCase();
    expect(request).toMatch(/^get \/seen\?x=1 http\/1\.1/);
    expect(request).toContain("cookie: mine=kept");
    expect(request).not.toContain("pg_");
    expect(request).not.toContain(ada.cookie.toLowerCase());
    expect(request).toContain(`host: ${info.ip}:8082`);
    expect(request).toContain(`x-forwarded-prefix: ${prefix().toLowerCase()}/8082`);
  });

  it("relays a WebSocket to the container's server, for the preview's cookie only", async () => {
    expect(await websocket(`${prefix()}/8081/`, previewCookie)).toBe("echo: hi");
    expect(await websocket(`${prefix()}/8081/`, `pg_session=${ada.cookie}`)).toBe("echo: hi");
    expect(await websocket(`${prefix()}/8081/`, `pg_session=${newCookieSecret()}`)).toMatch(/403/);
  });

  it("says so when nothing listens on a port", async () => {
    const r = await get(`${server.previewUrl}${prefix()}/8099/`, { cookie: previewCookie });
    expect(r.status).toBe(502);
    expect(r.body).toContain("Nothing listens on port 8099");
  });
});

describe("the main origin's walls", () => {
  it("refuses a socket.io connection from the preview origin", async () => {
    const connect = (origin: string) =>
      new Promise<string>((resolve) => {
        const socket = io(server.url, { transports: ["websocket"], extraHeaders: { origin, cookie: `pg_session=${ada.cookie}` }, reconnection: false, forceNew: true });
        socket.once("connect", () => (socket.close(), resolve("connected")));
        socket.once("connect_error", () => (socket.close(), resolve("refused")));
      });
    expect(await connect(server.previewUrl)).toBe("refused");
    expect(await connect(server.url)).toBe("connected");
  });
});
