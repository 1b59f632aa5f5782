// Files into and out of a student's container over HTTP, against the real
// server: a binary file (every byte value, a few MB) goes up into the
// directory the student's shell is in and comes back byte for byte; a link
// the student made to a host path is never followed out, neither reading nor
// writing; an upload over the limit is refused before anything is written, a
// cut-off one leaves nothing behind; only the session's own browser, from the
// playground's own page, gets in.
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { newCookieSecret, startServer, type Student, type TestServer } from "../fixtures/web-server.ts";

const MAX = 4 * 1024 * 1024;
let server: TestServer;
let ada: Student;
let hostDir: string;
const open: Student[] = [];

beforeAll(async () => {
  server = await startServer(inject("registry"), { PLAYGROUND_UPLOAD_MAX: String(MAX) });
  await server.waitForLog(/^default image ready$/);
  hostDir = await fsp.mkdtemp(path.join(os.tmpdir(), "pg-files-host-"));
  await fsp.writeFile(path.join(hostDir, "secret"), "the host's secret\n");
  ada = await student();
  await ada.start("ada");
});
afterEach(async () => {
  for (const s of open.splice(1)) s.close();
});
afterAll(async () => {
  for (const s of open) s.close();
  await server?.stop();
  await fsp.rm(hostDir, { recursive: true, force: true });
});

async function student(cookie?: string): Promise<Student> {
  const s = await server.student({ cookie });
  open.push(s);
  return s;
}

function cookieOf(s: Student): Record<string, string> {
  return { cookie: `pg_session=${s.cookie}` };
}

function upload(name: string, body: Buffer, headers: Record<string, string> = {}): Promise<Response> {
  return server.api(`/api/files/upload?name=${encodeURIComponent(name)}`, { method: "POST", body: new Uint8Array(body), headers: { "content-type": "application/octet-stream", ...headers } });
}

function download(filePath: string, headers: Record<string, string> = {}): Promise<Response> {
  return server.api(`/api/files/download?path=${encodeURIComponent(filePath)}`, { headers });
}

/** Every byte value, then random bytes: `size` in all. */
function binaryFile(size: number): Buffer {
  const data = randomBytes(size);
  for (let i = 0; i < 256 * 4; i++) data[i] = i % 256;
  return data;
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

describe("uploads and downloads", () => {
  it("round-trips a binary file byte for byte, into the directory the student's shell is in", async () => {
    await ada.shell("mkdir -p /root/work && cd /root/work");
    const data = binaryFile(3 * 1024 * 1024 + 17);
    const up = await upload("all bytes.bin", data, cookieOf(ada));
    expect(up.status).toBe(200);
    expect(await up.json()).toEqual({ path: "/root/work/all bytes.bin", bytes: data.length });
    // The student sees it where they are, owned by their root, with the same bytes.
    expect(await ada.shell("ls -ln 'all bytes.bin' | awk '{print $3, $5}'; sha256sum 'all bytes.bin' | cut -d' ' -f1")).toBe(`0 ${data.length}\n${sha256(data)}\n`);

    const down = await download("all bytes.bin", cookieOf(ada));
    expect(down.status).toBe(200);
    expect(down.headers.get("content-length")).toBe(String(data.length));
    expect(down.headers.get("content-disposition")).toContain("filename*=UTF-8''all%20bytes.bin");
    const back = Buffer.from(await down.arrayBuffer());
    expect(back.equals(data)).toBe(true);
    // An absolute path works too, wherever the shell is.
    await ada.shell("cd /");
    const absolute = Buffer.from(await (await download("/root/work/all bytes.bin", cookieOf(ada))).arrayBuffer());
    expect(sha256(absolute)).toBe(sha256(data));
  });

  it("replaces a file of the same name, and leaves no temporary file behind", async () => {
    await ada.shell("cd /tmp && echo old > same.txt");
    expect((await upload("same.txt", Buffer.from("new\n"), cookieOf(ada))).status).toBe(200);
    expect(await ada.shell("cat same.txt; ls -a /tmp | grep -c pg-upload")).toBe("new\n0\n");
  });

  it("never follows a link out of the container: a host path is the container's own", async () => {
    const secret = path.join(hostDir, "secret");
    const target = path.join(hostDir, "written-through-link");
    await ada.shell(`cd /tmp && ln -s ${secret} to-secret && ln -s ${target} to-target && ln -s /etc/hostname to-hostname`);
    const read = await download("to-secret", cookieOf(ada));
    expect(read.status).toBe(404);
    expect((await read.json()).error).toMatch(/no such file: to-secret/);
    // A link to a path the container has too is the container's file.
    const hostname = await (await download("to-hostname", cookieOf(ada))).text();
    expect(hostname).not.toBe(fs.readFileSync("/etc/hostname", "utf8"));
    expect(hostname).toMatch(/^[0-9a-f]{12}\n$/);
    // Uploading onto the link replaces the link; nothing appears on the host.
    expect((await upload("to-target", Buffer.from("planted\n"), cookieOf(ada))).status).toBe(200);
    expect(fs.existsSync(target)).toBe(false);
    expect(await ada.shell("ls -l to-target | cut -c1; cat to-target")).toBe("-\nplanted\n");
  });

  it("refuses what is not a file, and names that are not one path component", async () => {
    await ada.shell("cd /tmp && mkdir -p adir && mkfifo afifo");
    expect(await (await download("adir", cookieOf(ada))).json()).toEqual({ error: "adir is a directory" });
    expect(await (await download("afifo", cookieOf(ada))).json()).toEqual({ error: "afifo is not a regular file" });
    expect((await upload("adir", Buffer.from("x"), cookieOf(ada))).status).toBe(409);
    for (const name of ["", ".", "..", "a/b", "../up", "tab\there"]) {
      const r = await upload(name, Buffer.from("x"), cookieOf(ada));
      expect({ name, status: r.status }).toEqual({ name, status: 400 });
    }
  });
});

describe("limits", () => {
  it("refuses an upload over the limit with a clear error, before anything is written", async () => {
    await ada.shell("cd /tmp");
    const r = await upload("big.bin", Buffer.alloc(MAX + 1), cookieOf(ada));
    expect(r.status).toBe(413);
    expect((await r.json()).error).toBe(`the file is ${MAX + 1} bytes: uploads may be at most ${MAX} bytes`);
    expect(await ada.shell("ls -a /tmp | grep -c -e big.bin -e pg-upload")).toBe("0\n");
    // A download over the limit too.
    await ada.shell(`head -c ${MAX + 1} /dev/zero > /tmp/big-made-here`);
    const d = await download("/tmp/big-made-here", cookieOf(ada));
    expect(d.status).toBe(413);
    expect((await d.json()).error).toBe(`/tmp/big-made-here is ${MAX + 1} bytes: downloads may be at most ${MAX} bytes`);
    await ada.shell("rm /tmp/big-made-here");
  });

  it("leaves nothing behind when the browser goes away in the middle of an upload", async () => {
    await ada.shell("cd /tmp");
    const url = new URL(`${server.url}/api/files/upload?name=cut.bin`);
    const req = http.request(url, { method: "POST", headers: { ...cookieOf(ada), "content-length": String(2 * 1024 * 1024) } });
    req.on("error", () => {});
    req.write(Buffer.alloc(512 * 1024, 7));
    // The upload is under way: its temporary file is there.
    for (let i = 0; i < 50 && (await ada.shell("ls -a /tmp | grep -c pg-upload")) !== "1\n"; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await ada.shell("ls -a /tmp | grep -c pg-upload")).toBe("1\n");
    req.destroy();
    // The server notices, the script sees the short count and removes its temporary file.
    for (let i = 0; i < 50; i++) {
      if ((await ada.shell("ls -a /tmp | grep -c -e cut.bin -e pg-upload")) === "0\n") return;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await ada.shell("ls -a /tmp")).not.toMatch(/cut\.bin|pg-upload/);
  });

  it("asks for the length of an upload", async () => {
    const url = new URL(`${server.url}/api/files/upload?name=chunked.bin`);
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(url, { method: "POST", headers: { ...cookieOf(ada), "transfer-encoding": "chunked" } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on("error", reject);
      req.end("some bytes");
    });
    expect(status).toBe(411);
  });
});

describe("who may", () => {
  it("refuses a browser without a session, and one whose cookie is not a session's", async () => {
    for (const headers of [{}, { cookie: `pg_session=${newCookieSecret()}` }] as Record<string, string>[]) {
      expect((await upload("x.txt", Buffer.from("x"), headers)).status).toBe(401);
      expect((await download("/etc/hostname", headers)).status).toBe(401);
    }
  });

  it("puts another student's upload into their own container, never into this one", async () => {
    const bob = await student();
    await bob.start("bob");
    await bob.shell("cd /tmp");
    await ada.shell("cd /tmp");
    expect((await upload("bobs.txt", Buffer.from("bob\n"), cookieOf(bob))).status).toBe(200);
    expect(await bob.shell("cat /tmp/bobs.txt")).toBe("bob\n");
    expect(await ada.shell("ls /tmp/bobs.txt 2>&1")).toMatch(/No such file/);
    expect(await (await download("/tmp/same.txt", cookieOf(bob))).json()).toEqual({ error: "no such file: /tmp/same.txt" });
    bob.socket.emit("end");
    await bob.next("ended");
  });

  it("refuses a request from another origin (another site, or this host's preview port)", async () => {
    const preview = new URL(server.url);
    preview.port = String(Number(preview.port) + 1);
    for (const origin of ["http://evil.example", preview.origin]) {
      expect((await upload("x.txt", Buffer.from("x"), { ...cookieOf(ada), origin })).status).toBe(403);
      expect((await download("/etc/hostname", { ...cookieOf(ada), origin })).status).toBe(403);
    }
    expect((await download("/etc/hostname", { ...cookieOf(ada), origin: server.url })).status).toBe(200);
  });
});
