// A fresh machine with no registry to reach: the server imports the Alpine
// the repository carries (images/alpine/) as the default image, and a student
// in Chromium gets a shell from it; the instructor page says where the image
// came from. "No registry" is a mirror on a loopback port nobody listens on
// (docker.io requests go only to the mirror, so nothing leaves the host), and
// a data directory of its own with no image in it.
import net from "node:net";
import { expect, test } from "@playwright/test";
import { INSTRUCTOR_TOKEN, JOIN_CODE, startServer, type TestServer } from "../tests/fixtures/web-server.ts";
import { E2E_DIST } from "./global-setup.ts";
import { resetRoom, run, server, startSession } from "./server.ts";

let room: TestServer | undefined;

/** A loopback port with nothing listening on it. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

test.beforeAll(async () => {
  // The playground's bridge and firewall are the host's: this spec's server is the only one with containers.
  await resetRoom();
  const dead = `127.0.0.1:${await closedPort()}`;
  room = await startServer(server.registry, {
    PLAYGROUND_WEB_UI: "1",
    PLAYGROUND_NEXT_DIST: E2E_DIST,
    NODE_ENV: "production",
    PLAYGROUND_REGISTRY_MIRROR: `http://${dead}`,
    PLAYGROUND_INSECURE_REGISTRIES: dead,
  });
});

test.afterAll(async () => {
  await room?.stop();
});

test("no registry reachable: a student gets an Alpine shell from the bundled image", async ({ browser }) => {
  const ready = await room!.waitForLog(/^default image ready$/, 60_000);
  expect(String(ready.source)).toMatch(/^bundled images\/alpine\/alpine-minirootfs-3\.20\.3-/);

  const context = await browser.newContext({ baseURL: room!.url });
  try {
    const page = await context.newPage();
    await startSession(page, "Offline", JOIN_CODE);
    expect(await run(page, "cat /etc/alpine-release", 30_000)).toMatch(/^3\.20\.3$/m);

    const instructor = await context.newPage();
    await instructor.goto(`/instructor?token=${INSTRUCTOR_TOKEN}`);
    await expect(instructor.getByTestId("room-image")).toContainText(/bundled images\/alpine\//, { timeout: 20_000 });
    await page.getByRole("button", { name: "End session" }).click();
  } finally {
    await context.close();
  }
});
