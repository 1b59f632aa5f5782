// How `playground import` decides an imported root file system has /bin/sh
// (and so gets Cmd ["/bin/sh"]): the path is looked up as the container will
// see it, following the image's own symlinks inside the image only.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { existsInRoot } from "../../server/engine/image/import.ts";

let scratch: string;
beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "pg-exists-in-root-"));
});
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

function rootWith(build: (root: string) => void): string {
  const root = fs.mkdtempSync(path.join(scratch, "root-"));
  build(root);
  return root;
}

describe("existsInRoot", () => {
  test("a plain file, and a symlink to one (Alpine: /bin/sh → /bin/busybox)", () => {
    const root = rootWith((r) => {
      fs.mkdirSync(path.join(r, "bin"));
      fs.writeFileSync(path.join(r, "bin/busybox"), "");
      fs.symlinkSync("/bin/busybox", path.join(r, "bin/sh"));
    });
    expect(existsInRoot(root, "/bin/busybox")).toBe(true);
    expect(existsInRoot(root, "/bin/sh")).toBe(true);
    expect(existsInRoot(root, "/bin/bash")).toBe(false);
  });

  test("a merged /usr (Debian: /bin → usr/bin, /usr/bin/sh → dash)", () => {
    const root = rootWith((r) => {
      fs.mkdirSync(path.join(r, "usr/bin"), { recursive: true });
      fs.writeFileSync(path.join(r, "usr/bin/dash"), "");
      fs.symlinkSync("dash", path.join(r, "usr/bin/sh"));
      fs.symlinkSync("usr/bin", path.join(r, "bin"));
    });
    expect(existsInRoot(root, "/bin/sh")).toBe(true);
  });

  test("absolute targets and '..' stay inside the root, as in the container", () => {
    // Followed on the host, these would find the host's /usr/bin/env.
    const root = rootWith((r) => {
      fs.mkdirSync(path.join(r, "bin"));
      fs.writeFileSync(path.join(r, "bin/busybox"), "");
      fs.symlinkSync("/../../../../../usr/bin/env", path.join(r, "bin/absolute"));
      fs.symlinkSync("../../../../../usr/bin/env", path.join(r, "bin/relative"));
      fs.symlinkSync("../../../../../bin/busybox", path.join(r, "bin/sh"));
    });
    expect(fs.existsSync("/usr/bin/env")).toBe(true);
    expect(existsInRoot(root, "/bin/absolute")).toBe(false);
    expect(existsInRoot(root, "/bin/relative")).toBe(false);
    expect(existsInRoot(root, "/bin/sh")).toBe(true);
  });

  test("a dangling link, a link loop, a file used as a directory", () => {
    const root = rootWith((r) => {
      fs.symlinkSync("/nowhere", path.join(r, "dangling"));
      fs.symlinkSync("/loop", path.join(r, "loop"));
      fs.writeFileSync(path.join(r, "file"), "");
    });
    expect(existsInRoot(root, "/dangling")).toBe(false);
    expect(existsInRoot(root, "/loop")).toBe(false);
    expect(existsInRoot(root, "/file/sh")).toBe(false);
  });
});
