// The tests' registry, in the foreground, for trying the playground by hand
// and for the browser tests:
//
//   node --import tsx scripts/test-registry.ts [--port N]
//
// Starts Debian's docker-registry on loopback with the standard test images
// (busybox, alpine:3.20/latest/3.20-schema2, layered) and prints its address.
// Used as a mirror (PLAYGROUND_REGISTRY_MIRROR=http://ADDRESS) it serves
// `alpine:latest` the way Docker Hub would. Ctrl-C stops it and removes its
// storage.
import { parseArgs } from "node:util";
import { pushTestImages } from "../tests/fixtures/images.ts";
import { startRegistry } from "../tests/fixtures/registry.ts";

const { values } = parseArgs({ options: { port: { type: "string" } }, strict: true });
const port = values.port === undefined ? undefined : Number(values.port);
if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
  process.stderr.write(`test-registry: --port wants a port number, got "${values.port}"\n`);
  process.exit(2);
}

const registry = await startRegistry({ port });
let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await registry.stop();
  process.exit(0);
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);

try {
  const images = await pushTestImages(registry.address);
  await images.cleanup();
} catch (error) {
  process.stderr.write(`test-registry: ${(error as Error).message}\n`);
  await registry.stop();
  process.exit(1);
}

const a = registry.address;
process.stdout.write(
  [
    `test registry listening on ${a} (plain HTTP; storage ${registry.storageDir})`,
    `images: ${a}/library/busybox:latest, ${a}/library/alpine:3.20, :latest, :3.20-schema2, ${a}/library/layered:latest`,
    `try:    PLAYGROUND_INSECURE_REGISTRIES=${a} npx playground pull ${a}/library/alpine:3.20`,
    `mirror: PLAYGROUND_REGISTRY_MIRROR=http://${a} PLAYGROUND_INSECURE_REGISTRIES=${a} npx playground pull alpine`,
    `ready (Ctrl-C stops it)`,
    "",
  ].join("\n"),
);
// The registry child keeps the event loop alive until a signal stops it.
