// Next.js settings. The pages are a static export (out/, or the directory
// PLAYGROUND_NEXT_DIST names), sent as files by our own server
// (server/web/static-pages.ts), which also carries socket.io and the engine.
/** @type {import('next').NextConfig} */
const nextConfig = {
  // The browser tests build into a directory of their own (with their test hooks): a production build never has them.
  distDir: process.env.PLAYGROUND_NEXT_DIST || ".next",
  // Static pages: everything happens in the browser, so the server sends files
  // and needs no Next.js runtime of its own (server/web/static-pages.ts).
  output: "export",
  reactStrictMode: true,
  poweredByHeader: false,
};

export default nextConfig;
