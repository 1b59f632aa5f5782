// The pages, as files: Next.js builds them ahead (`next build` with a static
// export, next.config.mjs) and the server only sends them. Everything the
// pages do happens in the browser, over socket.io and the JSON API, so the
// server needs no Next.js runtime of its own: less memory, a faster start.
//
//   /             index.html
//   /instructor   instructor.html
//   /_next/…      scripts and styles, named by their content: cached for good
//   anything else 404.html, with status 404
// Only GET and HEAD; no path can leave the build directory.
import fs from "node:fs";
import path from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { RequestHandler } from "./http-server.ts";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".woff": "font/woff",
  ".map": "application/json",
};

/** The handler for the build in `dir`; throws when there is none, saying how to make it. */
export function staticPages(dir: string): RequestHandler {
  const root = path.resolve(dir);
  if (!fs.existsSync(path.join(root, "index.html"))) {
    throw new Error(`the web pages are not built in ${root}: build them with \`npx next build\` (\`npm start\` does it), or set PLAYGROUND_WEB_UI=0 to serve only the API`);
  }
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    const file = fileFor(root, new URL(req.url ?? "/", "http://localhost").pathname);
    if (file) return send(req, res, file, 200);
    send(req, res, path.join(root, "404.html"), 404);
  };
}

/** The file a path names inside `root`, or undefined. */
export function fileFor(root: string, pathname: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return undefined;
  }
  if (decoded.includes("\0")) return undefined;
  const relative = decoded.replace(/^\/+/, "").replace(/\/+$/, "") || "index.html";
  const candidates = path.extname(relative) ? [relative] : [`${relative}.html`, path.join(relative, "index.html")];
  for (const candidate of candidates) {
    const full = path.resolve(root, candidate);
    if (full !== root && !full.startsWith(root + path.sep)) return undefined;
    try {
      if (fs.statSync(full).isFile()) return full;
    } catch {
      // not this one
    }
  }
  return undefined;
}

function send(req: IncomingMessage, res: ServerResponse, file: string, status: number): void {
  const immutable = file.includes(`${path.sep}_next${path.sep}static${path.sep}`);
  res.writeHead(status, {
    "content-type": TYPES[path.extname(file)] ?? "application/octet-stream",
    "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-cache",
    "x-content-type-options": "nosniff",
  });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  fs.createReadStream(file)
    .on("error", () => res.destroy())
    .pipe(res);
}
