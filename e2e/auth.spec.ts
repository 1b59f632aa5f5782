// The instructor page, the instructor socket and the admin/instructor API
// refuse anyone without the right token; the health check needs none.
import { expect, test } from "@playwright/test";
import { io } from "socket.io-client";
import { server } from "./server.ts";

test("the health check answers without a token", async () => {
  const res = await fetch(`${server.url}/api/health`);
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ ok: true });
});

test("the session list and the reset refuse a missing or wrong token", async () => {
  const attempts: { method: string; path: string; authorization?: string }[] = [
    { method: "GET", path: "/api/sessions" },
    { method: "GET", path: "/api/sessions", authorization: "Bearer wrong-token-000000" },
    { method: "GET", path: "/api/sessions", authorization: `Basic ${Buffer.from(`x:${server.instructorToken}`).toString("base64")}` },
    { method: "POST", path: "/api/admin/reset" },
    { method: "POST", path: "/api/admin/reset", authorization: "Bearer wrong-token-000000" },
    // The instructor may watch, not wipe the playground.
    { method: "POST", path: "/api/admin/reset", authorization: `Bearer ${server.instructorToken}` },
  ];
  for (const { method, path, authorization } of attempts) {
    const res = await fetch(`${server.url}${path}`, { method, headers: authorization ? { authorization } : {} });
    expect(res.status, `${method} ${path} with ${authorization ?? "no token"}`).toBe(401);
  }
  const allowed = await fetch(`${server.url}/api/sessions`, { headers: { authorization: `Bearer ${server.instructorToken}` } });
  expect(allowed.status).toBe(200);
  expect(await allowed.json()).toHaveProperty("sessions");
});

test("the instructor socket refuses a missing or wrong token", async () => {
  for (const auth of [{}, { token: "wrong-token-000000" }, { token: server.adminToken.slice(0, -1) }]) {
    const socket = io(`${server.url}/instructor`, { auth, transports: ["websocket"], reconnection: false });
    try {
      const outcome = await new Promise<string>((resolve) => {
        socket.on("connect", () => resolve("connected"));
        socket.on("sessions", () => resolve("got the session list"));
        socket.on("connect_error", (error) => resolve(`refused: ${error.message}`));
      });
      expect(outcome, `token ${JSON.stringify(auth)}`).toMatch(/^refused: .*unauthorized/);
    } finally {
      socket.close();
    }
  }
});

test("the instructor page asks for a token and says when it is wrong", async ({ browser }) => {
  const context = await browser.newContext({ baseURL: server.url });
  try {
    const page = await context.newPage();
    await page.goto("/instructor");
    await expect(page.getByLabel("Token")).toBeVisible();
    await expect(page.getByTestId("live-sessions")).toHaveCount(0);

    await page.getByLabel("Token").fill("wrong-token-000000");
    await page.getByRole("button", { name: /open the session list/i }).click();
    await expect(page.getByText(/the server refused this token/i)).toBeVisible();
    await expect(page.getByTestId("live-sessions")).toHaveCount(0);

    // A link with a wrong token: refused too, and the token leaves the address bar.
    await page.goto("/instructor?token=another-wrong-token");
    await expect(page.getByText(/the server refused this token/i)).toBeVisible();
    await expect(page).toHaveURL(/\/instructor$/);

    await page.getByLabel("Token").fill(server.instructorToken);
    await page.getByRole("button", { name: /open the session list/i }).click();
    await expect(page.getByTestId("live-sessions")).toBeVisible();
    await expect(page.getByTestId("connection")).toHaveText("connected");
  } finally {
    await context.close();
  }
});
