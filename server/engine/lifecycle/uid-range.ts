// The host uids and gids containers use (PLAYGROUND_UID_BASE, _COUNT) must be
// nobody else's. Container root is host uid 100000 by default, which is just
// where `useradd` starts giving the first login user its subordinate ids
// (/etc/subuid): sharing them would let that user's own rootless containers
// and the students' own files and processes be each other's. Checked at every
// start; an overlap is refused with one line naming it and the setting to change.
import fs from "node:fs";

export interface IdFiles {
  subuid: string;
  subgid: string;
  passwd: string;
  group: string;
}

const HOST_FILES: IdFiles = { subuid: "/etc/subuid", subgid: "/etc/subgid", passwd: "/etc/passwd", group: "/etc/group" };

/** Throws when [base, base+count) overlaps another user's subordinate ids, or an account's or group's id. */
export function checkUidRange(base: number, count: number, files: IdFiles = HOST_FILES): void {
  const end = base + count - 1;
  const read = (file: string) => {
    try {
      return fs.readFileSync(file, "utf8");
    } catch {
      return ""; // a host without the file has nothing there to overlap
    }
  };
  const taken: { what: string; first: number; last: number }[] = [];
  for (const file of [files.subuid, files.subgid]) {
    for (const line of read(file).split("\n")) {
      const [name, start, size] = line.trim().split(":");
      if (!name || !/^\d+$/.test(start ?? "") || !/^\d+$/.test(size ?? "")) continue;
      taken.push({ what: `${file} entry "${line.trim()}"`, first: Number(start), last: Number(start) + Number(size) - 1 });
    }
  }
  for (const [file, kind] of [[files.passwd, "account"], [files.group, "group"]] as const) {
    for (const line of read(file).split("\n")) {
      const [name, , id] = line.split(":");
      if (name && /^\d+$/.test(id ?? "")) taken.push({ what: `${kind} "${name}" (id ${id}) in ${file}`, first: Number(id), last: Number(id) });
    }
  }
  const clash = taken.find((t) => t.first <= end && base <= t.last);
  if (!clash) return;
  throw new Error(
    `the containers' host ids ${base}-${end} (PLAYGROUND_UID_BASE, PLAYGROUND_UID_COUNT) overlap ${clash.what}: ` +
      `set PLAYGROUND_UID_BASE to a free range, e.g. ${freeBase(taken, count)}`,
  );
}

/** The first multiple of 65536 from 1,048,576 (16 × 65536) up whose range overlaps nothing taken. */
function freeBase(taken: { first: number; last: number }[], count: number): number {
  for (let base = 1_048_576; ; base += 65536) {
    if (!taken.some((t) => t.first <= base + count - 1 && base <= t.last)) return base;
  }
}
