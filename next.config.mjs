// Next.js settings. The pages are served by our own server (server/main.ts),
// which also carries socket.io and the engine; these packages are native
// addons or load one, so Next must leave them to Node instead of bundling them.
/** @type {import('next').NextConfig} */
const nextConfig = {
  // The browser tests build into a directory of their own (with their test hooks): a production build never has them.
  distDir: process.env.PLAYGROUND_NEXT_DIST || ".next",
  reactStrictMode: true,
  poweredByHeader: false,
  serverExternalPackages: ["better-sqlite3", "@prisma/adapter-better-sqlite3", "@prisma/client"],
};

export default nextConfig;
