// Students keep their work. A student writes files (text, binary, a deletion
// of one of the image's files), ends the session, and comes back in the same
// browser under the same name: the files are back, byte for byte, and the
// deleted file is still deleted; a fresh start leaves them out. With keep-work
// off nothing is kept; an archive over the cap is refused and said so; the
// admin's reset keeps the work unless asked to purge it.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import type { KeptWork } from "../../server/common/protocol.ts";
import { ADMIN_TOKEN, startServer, type Student, type TestServer } from "../fixtures/web-server.ts";

let server: TestServer;
const open: Student[] = [];

beforeAll(async () => {
  server = await startServer(inject("registry"));
  await server.waitForLog(/^default image ready$/);
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});
afterAll(async () => {
  await server?.stop();
});

async function student(cookie?: string): Promise<Student> {
  const s = await server.student({ cookie });
  open.push(s);
  return s;
}

async function endAndWaitForKept(s: Student): Promise<string> {
  const info = s.events.findLast((e) => e.event === "session" && e.args[0])!.args[0] as { id: string };
  s.socket.emit("end");
  await s.next("ended");
  // Saving happens as the container ends: wait until the list says what became of the files.
  for (let i = 0; i < 100; i++) {
    const row = (await server.rows()).find((r) => r.id === info.id && r.savedWork);
    if (row?.savedWork) return row.savedWork;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the session's files were never accounted for");
}

async function reset(query = ""): Promise<void> {
  const res = await server.api(`/api/admin/reset${query}`, { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  expect(res.status).toBe(200);
}

describe("keeping a student's work", () => {
  it("brings back the files of the last session, byte for byte, deletions included; a fresh start leaves them out", async () => {
    const first = await student();
    await first.start("ada");
    const made = await first.shell("mkdir -p /root/proj && echo hello > /root/proj/notes.txt && head -c 100000 /dev/urandom > /root/blob && rm /etc/motd && sha256sum /root/blob");
    const blobSum = made.trim().split(/\s+/)[0];
    expect(blobSum).toMatch(/^[0-9a-f]{64}$/);
    expect(await endAndWaitForKept(first)).toMatch(/^kept \d+ bytes until /);

    const back = await student(first.cookie);
    const [kept] = (await back.next("kept", 20_000, true)) as [KeptWork[]];
    expect(kept.map((k) => k.studentName)).toEqual(["ada"]);
    await back.start("ada");
    expect(back.events.find((e) => e.event === "progress")?.args[0]).toMatch(/^Your files from last time are back/);
    expect(await back.shell("cat /root/proj/notes.txt; sha256sum /root/blob; ls /etc/motd 2>&1")).toBe(
      `hello\n${blobSum}  /root/blob\nls: /etc/motd: No such file or directory\n`,
    );
    // The container's own files are written afresh, never kept.
    expect(await back.shell("cat /etc/hostname")).toMatch(/^[0-9a-f]{12}\n$/);

    // Changes on top of restored work are kept together with it.
    await back.shell("echo more >> /root/proj/notes.txt; rm /root/blob");
    await endAndWaitForKept(back);
    const third = await student(first.cookie);
    await third.start("ada");
    expect(await third.shell("cat /root/proj/notes.txt; ls /root/blob 2>&1")).toBe("hello\nmore\nls: /root/blob: No such file or directory\n");
    third.socket.emit("end");
    await third.next("ended");

    const fresh = await student(first.cookie);
    await fresh.start("ada", { fresh: true });
    expect(await fresh.shell("ls /root/proj 2>&1; test -e /etc/motd && echo motd-present")).toBe("ls: /root/proj: No such file or directory\nmotd-present\n");
  });

  it("keeps another student's work apart, even in the same browser", async () => {
    const s = await student();
    await s.start("grace");
    await s.shell("echo mine > /root/grace.txt");
    await endAndWaitForKept(s);
    const other = await student(s.cookie);
    await other.start("linus");
    expect(await other.shell("ls /root/grace.txt 2>&1")).toBe("ls: /root/grace.txt: No such file or directory\n");
  });

  it("keeps the work through a reset, and deletes it when the reset purges", async () => {
    const s = await student();
    await s.start("ken");
    await s.shell("echo kept > /root/ken.txt");
    await endAndWaitForKept(s);
    await reset();
    const after = await student(s.cookie);
    expect(((await after.next("kept", 20_000, true)) as [KeptWork[]])[0].map((k) => k.studentName)).toEqual(["ken"]);
    await reset("?purge=1");
    const purged = await student(s.cookie);
    expect((await purged.next("kept", 20_000, true))[0]).toEqual([]);
  });

  it("refuses, and says so, files larger than the cap", async () => {
    server = await server.restart("SIGTERM", { PLAYGROUND_KEEP_WORK_MAX: "64k" });
    const s = await student();
    await s.start("big");
    await s.shell("head -c 1000000 /dev/urandom > /root/big");
    expect(await endAndWaitForKept(s)).toMatch(/^not kept: the files take more than 65536 bytes compressed/);
    const back = await student(s.cookie);
    expect((await back.next("kept", 20_000, true))[0]).toEqual([]);
    await back.start("big");
    expect(await back.shell("ls /root/big 2>&1")).toBe("ls: /root/big: No such file or directory\n");
  });

  it("keeps nothing when keeping work is off", async () => {
    server = await server.restart("SIGTERM", { PLAYGROUND_KEEP_WORK_DAYS: "0" });
    const s = await student();
    await s.start("nobody");
    await s.shell("echo gone > /root/gone.txt");
    s.socket.emit("end");
    await s.next("ended");
    const back = await student(s.cookie);
    expect((await back.next("kept", 20_000, true))[0]).toEqual([]);
    await back.start("nobody");
    expect(await back.shell("ls /root/gone.txt 2>&1")).toBe("ls: /root/gone.txt: No such file or directory\n");
  });
});
