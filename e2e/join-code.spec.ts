// Who may start a shell: the room's join code, in the browser. The instructor
// page shows it; a student's start form asks for it; a wrong code gets a clear
// message and no shell, the right one a shell; the browser remembers the code
// that worked, so the student is not asked to type it again.
import { expect, test, type BrowserContext, type Page } from "@playwright/test";
import { resetRoom, run, server } from "./server.ts";

test.describe.configure({ mode: "serial" });

let context: BrowserContext;
let student: Page;

test.beforeAll(async ({ browser }) => {
  context = await browser.newContext({ baseURL: server.url });
  student = await context.newPage();
});

test.afterAll(async () => {
  await context?.close();
  await resetRoom();
});

test("the instructor page shows the room's join code", async ({ browser }) => {
  const instructorContext = await browser.newContext({ baseURL: server.url });
  try {
    const instructor = await instructorContext.newPage();
    await instructor.goto(`/instructor?token=${server.instructorToken}`);
    await expect(instructor.getByTestId("join-code")).toHaveText(server.joinCode);
  } finally {
    await instructorContext.close();
  }
});

test("a wrong join code gets a clear message and no shell", async () => {
  await student.goto("/");
  const code = student.getByLabel(/join code/i);
  // A browser that never joined is asked for the code: nothing is filled in.
  await expect(code).toHaveValue("");
  await code.fill("WRONG42");
  await student.getByLabel(/your name/i).fill("Barbara");
  await student.getByRole("button", { name: "Start" }).click();

  await expect(student.locator("form").getByRole("alert")).toContainText(/join code is not this room's/i);
  await expect(student.getByTestId("container-id")).toHaveCount(0);
  // The student can type the code again, right there.
  await expect(code).toBeVisible();
  await expect(code).toBeEditable();
  const { rows } = await sessions();
  expect(rows.filter((row) => row.studentName === "Barbara")).toEqual([]);
});

test("the right join code gives a shell", async () => {
  await student.getByLabel(/join code/i).fill(server.joinCode);
  await student.getByRole("button", { name: "Start" }).click();
  await expect(student.getByTestId("container-id")).toBeVisible({ timeout: 45_000 });
  const text = await run(student, 'echo "joined-$((6*7))"');
  expect(text).toMatch(/^joined-42\s*$/m);
});

test("after a reload the browser remembers the code: the student is not asked for it again", async () => {
  // A reload lands back in the same shell, with no form at all.
  const containerId = await student.getByTestId("container-id").textContent();
  await student.reload();
  await expect(student.getByTestId("container-id")).toHaveText(containerId!);
  await expect(student.getByLabel(/join code/i)).toHaveCount(0);

  // Once that session is over, the next one starts with the code already there.
  await student.getByRole("button", { name: "End session" }).click();
  await expect(student.getByTestId("banner")).toContainText(/ended/i);
  await student.reload();
  await expect(student.getByLabel(/join code/i)).toHaveValue(server.joinCode);
  await student.getByRole("button", { name: "Start" }).click();
  await expect(student.getByTestId("container-id")).toBeVisible({ timeout: 45_000 });
  await expect(student.getByTestId("container-id")).not.toHaveText(containerId!);
  await run(student, "true");
});

async function sessions(): Promise<{ rows: { studentName: string | null; state: string }[] }> {
  const res = await fetch(`${server.url}/api/sessions`, { headers: { authorization: `Bearer ${server.instructorToken}` } });
  expect(res.status).toBe(200);
  return { rows: ((await res.json()) as { sessions: { studentName: string | null; state: string }[] }).sessions };
}
