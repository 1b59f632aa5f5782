// The pages as files: every path maps inside the build directory or nowhere.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileFor, staticPages } from "../../server/web/static-pages.ts";

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "pg-pages-"));
  for (const file of ["index.html", "instructor.html", "404.html", "_next/static/chunks/app.js"]) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), file);
  }
  fs.writeFileSync(path.join(path.dirname(root), "secret.txt"), "outside");
});
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(path.join(path.dirname(root), "secret.txt"), { force: true });
});

describe("the pages as files", () => {
  it("maps the page paths to their files", () => {
    expect(fileFor(root, "/")).toBe(path.join(root, "index.html"));
    expect(fileFor(root, "/instructor")).toBe(path.join(root, "instructor.html"));
    expect(fileFor(root, "/instructor/")).toBe(path.join(root, "instructor.html"));
    expect(fileFor(root, "/_next/static/chunks/app.js")).toBe(path.join(root, "_next/static/chunks/app.js"));
    expect(fileFor(root, "/nothing")).toBeUndefined();
  });

  it("never leaves the build directory, however the path is written", () => {
    for (const attempt of ["/../secret.txt", "/%2e%2e/secret.txt", "/_next/../../secret.txt", "/..%2fsecret.txt", "/%00index.html", "/%E0%A4%A"]) {
      expect(fileFor(root, attempt), attempt).toBeUndefined();
    }
  });

  it("refuses to start without a build, saying how to make one", () => {
    expect(() => staticPages(path.join(root, "missing"))).toThrow(/npx next build/);
  });
});
