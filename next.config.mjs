// Next.js settings. The pages are served by our own server (server/main.ts),
// which also carries socket.io and the engine; these packages are native
// addons or load one, so Next must leave them to Node instead of bundling them.
/** @type {import('next').NextConfig} */
const nextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  serverExternalPackages: ["better-sqlite3", "@prisma/adapter-better-sqlite3", "@prisma/client"],
};

export default nextConfig;
