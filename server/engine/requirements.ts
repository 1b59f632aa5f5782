// The programs the playground runs on the host and the Debian package of
// each: scripts/requirements.tsv, the one list that scripts/setup.sh installs
// from and `playground doctor` checks. Read here for the doctor.
import fs from "node:fs";
import path from "node:path";

export const NEEDS = ["engine", "tests", "bench"] as const;
export type Need = (typeof NEEDS)[number];

export interface Requirement {
  /** A program looked up on PATH, or an absolute path to a file the package installs. */
  program: string;
  /** The Debian package that brings it. */
  pkg: string;
  /** Who runs it. */
  needs: Need[];
  purpose: string;
}

export const REQUIREMENTS_FILE = path.join("scripts", "requirements.tsv");

/** Parses the list: tab-separated rows, `#` comments and blank lines skipped; a malformed row is an error naming its line. */
export function parseRequirements(text: string): Requirement[] {
  const rows: Requirement[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "" || line.startsWith("#")) return;
    const where = `${REQUIREMENTS_FILE} line ${index + 1}`;
    const fields = line.split("\t");
    if (fields.length !== 4 || fields.some((f) => f.trim() === "")) {
      throw new Error(`${where}: expected four tab-separated fields (program, package, needed by, what for)`);
    }
    const [program, pkg, needs, purpose] = fields.map((f) => f.trim());
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(pkg)) throw new Error(`${where}: "${pkg}" is not a Debian package name`);
    if (/\s/.test(program)) throw new Error(`${where}: "${program}" is not a program name`);
    const needList = needs.split(",").map((n) => n.trim());
    const unknown = needList.find((n) => !(NEEDS as readonly string[]).includes(n));
    if (unknown !== undefined) throw new Error(`${where}: "${unknown}" is not one of ${NEEDS.join(", ")}`);
    rows.push({ program, pkg, needs: needList as Need[], purpose });
  });
  return rows;
}

/** The list in this checkout: found above this file, whether it runs from server/ or bundled from dist/. */
export function requirementsPath(from: string = import.meta.dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, REQUIREMENTS_FILE);
    if (fs.existsSync(file)) return file;
    if (dir === path.dirname(dir)) throw new Error(`${REQUIREMENTS_FILE} was not found above ${from}`);
  }
}

export function loadRequirements(file: string = requirementsPath()): Requirement[] {
  return parseRequirements(fs.readFileSync(file, "utf8"));
}
