// Finds and loads the lessons: the ones shipped in the repository's lessons/
// and a course's own (PLAYGROUND_LESSONS_DIR). Each lesson is checked as a
// whole: its files parse, its check scripts are valid shell for the shell
// that runs them (busybox sh, as checks run with the host's static busybox).
// A broken lesson is reported with file and line and left out; the others
// still load.
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import {
  checkStepCount,
  LESSON_ID,
  parseLessonFile,
  parseStepFile,
  stepFileNames,
  type Lesson,
  type LessonProblem,
} from "./format.ts";

const run = promisify(execFile);

/** The shell checks run in (the host's static busybox: see engine/process/enter). */
export const CHECK_SHELL = "/bin/busybox";

export interface LoadedLessons {
  lessons: Lesson[];
  /** What was wrong with the lessons left out. */
  problems: LessonProblem[];
}

/** Every lesson under `dirs` (later folders win over earlier ones with the same id). */
export async function loadLessons(dirs: string[]): Promise<LoadedLessons> {
  const byId = new Map<string, Lesson>();
  const problems: LessonProblem[] = [];
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = (await fs.readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    } catch (error) {
      problems.push({ file: dir, line: 0, message: `cannot read the lessons folder: ${(error as Error).message}` });
      continue;
    }
    for (const name of entries) {
      const folder = path.join(dir, name);
      if (!(await fileExists(path.join(folder, "lesson.md")))) continue;
      const found: LessonProblem[] = [];
      const lesson = await loadLesson(folder, found);
      if (found.length > 0) problems.push(...found);
      else byId.set(lesson.id, lesson);
    }
  }
  return { lessons: [...byId.values()], problems };
}

/** One lesson folder; problems are added to `problems` (the lesson is only usable when there are none). */
export async function loadLesson(folder: string, problems: LessonProblem[]): Promise<Lesson> {
  const id = path.basename(folder);
  const lessonFile = path.join(folder, "lesson.md");
  if (!LESSON_ID.test(id)) problems.push({ file: folder, line: 0, message: "a lesson folder's name is lower-case letters, digits and dashes" });
  const head = parseLessonFile(await fs.readFile(lessonFile, "utf8"), lessonFile, problems);
  const names = stepFileNames(await fs.readdir(folder));
  checkStepCount(names.length, lessonFile, problems);
  const steps = [];
  for (const name of names) {
    const file = path.join(folder, name);
    const step = parseStepFile(await fs.readFile(file, "utf8"), name.replace(/\.md$/, ""), file, problems);
    if (step.check) problems.push(...(await shellSyntaxProblems(step.check.script, file, step.check.line)));
    steps.push(step);
  }
  return { id, ...head, steps };
}

/** `sh -n` on a check script: its syntax errors, with their lines in the step's file. */
export async function shellSyntaxProblems(script: string, file: string, firstLine: number): Promise<LessonProblem[]> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "pg-check-"));
  const scriptFile = path.join(dir, "check.sh");
  try {
    await fs.writeFile(scriptFile, script + "\n");
    await run(CHECK_SHELL, ["sh", "-n", scriptFile]);
    return [];
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") return [{ file, line: firstLine, message: `cannot check the script: ${CHECK_SHELL} is missing (apt-get install busybox-static)` }];
    const text = (e.stderr ?? e.message).trim();
    const m = /line (\d+): (.*)$/m.exec(text);
    return [{ file, line: m ? firstLine + Number(m[1]) - 1 : firstLine, message: `check script: ${m ? m[2] : text.replace(/^.*?: /, "")}` }];
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function fileExists(file: string): Promise<boolean> {
  return fs.stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
}
