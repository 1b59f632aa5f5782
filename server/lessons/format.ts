// The lesson format (documented for authors in lessons/README.md), parsed
// from text: no file system here, so every rule is unit-tested on strings.
//
// A lesson is a folder: `lesson.md` (front matter with the title and the
// room's settings, then the introduction) and one Markdown file per step,
// taken in the order of their names (`01-look-around.md`, …). A step's front
// matter has its title; its text may hold one fenced block whose info string
// is `check`: a shell script that passes (exit 0) when the student has done
// the step. The block is not shown to the student.
//
// Every problem is reported with its file and line, so an author can fix a
// lesson without reading the server's code.

export interface LessonSettings {
  /** The image students of this lesson get. */
  image?: string;
  /** "nested": the build-your-own-container profile (user namespaces inside). */
  profile?: "default" | "nested";
}

export interface LessonCheck {
  script: string;
  /** Line of the script's first line in its file, for error messages. */
  line: number;
  timeoutMs: number;
}

export interface LessonStep {
  /** The file's name without ".md". */
  id: string;
  title: string;
  /** Markdown shown to the student (the check block removed). */
  body: string;
  check?: LessonCheck;
  file: string;
}

export interface Lesson {
  /** The folder's name: what PLAYGROUND_LESSON names. */
  id: string;
  title: string;
  intro: string;
  settings: LessonSettings;
  steps: LessonStep[];
}

export interface LessonProblem {
  file: string;
  line: number;
  message: string;
}

export class LessonFormatError extends Error {
  constructor(readonly problems: LessonProblem[]) {
    super(problems.map((p) => `${p.file}:${p.line}: ${p.message}`).join("\n"));
  }
}

/** Lesson and step ids: what appears in URLs, settings and logs. */
export const LESSON_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
export const DEFAULT_CHECK_TIMEOUT_MS = 5000;
const MAX_CHECK_TIMEOUT_MS = 30_000;
const MAX_STEPS = 50;

interface Parsed {
  fields: Map<string, { value: string; line: number }>;
  body: string;
  /** Line number (1-based) of the body's first line. */
  bodyLine: number;
}

/**
 * Front matter: a first line `---`, then `key: value` lines, then `---`.
 * Values may be quoted ("…"). Without front matter the whole text is the body.
 */
export function parseFrontMatter(text: string, file: string, problems: LessonProblem[]): Parsed {
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  const fields = new Map<string, { value: string; line: number }>();
  if (lines[0]?.trim() !== "---") return { fields, body: lines.join("\n"), bodyLine: 1 };
  const end = lines.findIndex((l, i) => i > 0 && l.trim() === "---");
  if (end < 0) {
    problems.push({ file, line: 1, message: "the front matter starting here has no closing ---" });
    return { fields, body: "", bodyLine: lines.length + 1 };
  }
  for (let i = 1; i < end; i++) {
    const line = lines[i];
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const m = /^([a-z][a-z0-9-]*):\s*(.*?)\s*$/.exec(line);
    if (!m) {
      problems.push({ file, line: i + 1, message: `expected "key: value", found "${line.trim()}"` });
      continue;
    }
    let value = m[2];
    if (/^".*"$/.test(value)) value = value.slice(1, -1);
    if (fields.has(m[1])) problems.push({ file, line: i + 1, message: `"${m[1]}" is given twice` });
    fields.set(m[1], { value, line: i + 1 });
  }
  return { fields, body: lines.slice(end + 1).join("\n"), bodyLine: end + 2 };
}

function unknownFields(parsed: Parsed, allowed: string[], file: string, problems: LessonProblem[]): void {
  for (const [key, { line }] of parsed.fields) {
    if (!allowed.includes(key)) problems.push({ file, line, message: `unknown setting "${key}" (known: ${allowed.join(", ")})` });
  }
}

function requiredTitle(parsed: Parsed, file: string, problems: LessonProblem[]): string {
  const title = parsed.fields.get("title")?.value ?? "";
  if (!title) problems.push({ file, line: 1, message: "a title is required (front matter: title: …)" });
  return title;
}

/** lesson.md: title, settings, the introduction. */
export function parseLessonFile(text: string, file: string, problems: LessonProblem[]): Omit<Lesson, "id" | "steps"> {
  const parsed = parseFrontMatter(text, file, problems);
  unknownFields(parsed, ["title", "image", "profile"], file, problems);
  const settings: LessonSettings = {};
  const image = parsed.fields.get("image");
  if (image) settings.image = image.value;
  const profile = parsed.fields.get("profile");
  if (profile) {
    if (profile.value === "default" || profile.value === "nested") settings.profile = profile.value;
    else problems.push({ file, line: profile.line, message: `profile must be "default" or "nested", not "${profile.value}"` });
  }
  return { title: requiredTitle(parsed, file, problems), intro: parsed.body.trim(), settings };
}

/** A step's file: title, text, and its check (a ```check block). */
export function parseStepFile(text: string, id: string, file: string, problems: LessonProblem[]): LessonStep {
  const parsed = parseFrontMatter(text, file, problems);
  unknownFields(parsed, ["title", "check-timeout"], file, problems);
  let timeoutMs = DEFAULT_CHECK_TIMEOUT_MS;
  const timeout = parsed.fields.get("check-timeout");
  if (timeout) {
    const seconds = Number(timeout.value);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds * 1000 > MAX_CHECK_TIMEOUT_MS) {
      problems.push({ file, line: timeout.line, message: `check-timeout must be a number of seconds from 0 to ${MAX_CHECK_TIMEOUT_MS / 1000}` });
    } else timeoutMs = seconds * 1000;
  }
  const lines = parsed.body.split("\n");
  const shown: string[] = [];
  let check: LessonCheck | undefined;
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(`{3,}|~{3,})\s*check\s*$/.exec(lines[i]);
    if (!fence) {
      shown.push(lines[i]);
      continue;
    }
    const close = lines.findIndex((l, j) => j > i && l.trim() === fence[1]);
    const line = parsed.bodyLine + i;
    if (close < 0) {
      problems.push({ file, line, message: "this check block is never closed" });
      break;
    }
    if (check) problems.push({ file, line, message: "a step has at most one check block" });
    else check = { script: lines.slice(i + 1, close).join("\n"), line: line + 1, timeoutMs };
    i = close;
  }
  if (check && check.script.trim() === "") problems.push({ file, line: check.line - 1, message: "this check block is empty" });
  return { id, title: requiredTitle(parsed, file, problems), body: shown.join("\n").trim(), check, file };
}

/** Step files of a lesson folder, in order: `NN-name.md`. */
export function stepFileNames(names: string[]): string[] {
  return names.filter((n) => /^\d+-[a-z0-9-]+\.md$/.test(n)).sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}

export function checkStepCount(count: number, file: string, problems: LessonProblem[]): void {
  if (count === 0) problems.push({ file, line: 1, message: "a lesson needs at least one step (files named like 01-first-step.md)" });
  if (count > MAX_STEPS) problems.push({ file, line: 1, message: `a lesson has at most ${MAX_STEPS} steps` });
}
