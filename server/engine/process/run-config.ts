// What a container runs, worked out from the image's config and the request,
// with `docker run`'s rules:
//  - command: the image's Entrypoint, followed by the command given on the
//    command line, or by the image's Cmd when none is given;
//  - environment: a default PATH, HOSTNAME, HOME (and TERM with a terminal),
//    then the image's Env, then the request's -e values; later ones win;
//  - working directory: the image's WorkingDir, or /;
//  - user: the image's User, as "uid", "uid:gid", "name" or "name:group",
//    names looked up in the container's own /etc/passwd and /etc/group.
import type { ImageRunConfig } from "../image/types.ts";
import { readRootfsFile } from "../rootfs/read.ts";

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export class RunConfigError extends Error {}

export function resolveArgv(image: ImageRunConfig, command: string[] | undefined): string[] {
  const entrypoint = image.Entrypoint ?? [];
  const argv = [...entrypoint, ...(command && command.length > 0 ? command : (image.Cmd ?? []))];
  if (argv.length === 0) throw new RunConfigError("no command given and the image has neither Entrypoint nor Cmd");
  return argv;
}

/** "K=V" entries merged by key; later lists override earlier ones, first-seen order kept. */
export function mergeEnv(...lists: (string[] | undefined)[]): string[] {
  const merged = new Map<string, string>();
  for (const list of lists) {
    for (const entry of list ?? []) {
      const eq = entry.indexOf("=");
      if (eq <= 0) throw new RunConfigError(`environment entry "${entry}" must look like NAME=value`);
      merged.set(entry.slice(0, eq), entry);
    }
  }
  return [...merged.values()];
}

export function resolveWorkingDir(image: ImageRunConfig): string {
  const dir = image.WorkingDir?.trim();
  if (!dir) return "/";
  if (!dir.startsWith("/")) throw new RunConfigError(`the image's WorkingDir "${dir}" is not an absolute path`);
  return dir;
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

function parsePasswd(text: string | undefined): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of (text ?? "").split("\n")) {
    const f = line.split(":");
    if (f.length < 7 || !/^\d+$/.test(f[2]) || !/^\d+$/.test(f[3])) continue;
    entries.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] || "/" });
  }
  return entries;
}

function parseGroups(text: string | undefined): { name: string; gid: number }[] {
  const groups: { name: string; gid: number }[] = [];
  for (const line of (text ?? "").split("\n")) {
    const f = line.split(":");
    if (f.length < 3 || !/^\d+$/.test(f[2])) continue;
    groups.push({ name: f[0], gid: Number(f[2]) });
  }
  return groups;
}

/**
 * The uid/gid the container's main process runs as. `uidCount` bounds what the
 * user namespace can map: an id outside it would leave the process as "nobody".
 */
export async function resolveUser(rootfs: string, spec: string | undefined, uidCount: number): Promise<ResolvedUser> {
  const text = spec?.trim() ?? "";
  const [userPart, groupPart] = text.split(":", 2);
  const passwd = parsePasswd(await readRootfsFile(rootfs, "/etc/passwd"));

  let uid: number;
  let gid = 0;
  let home = "/";
  if (userPart === "") {
    uid = 0;
    home = "/root";
  } else if (/^\d+$/.test(userPart)) {
    uid = Number(userPart);
  } else {
    const entry = passwd.find((p) => p.name === userPart);
    if (!entry) throw new RunConfigError(`unable to find user ${userPart}: no matching entries in the image's /etc/passwd`);
    uid = entry.uid;
  }
  const known = passwd.find((p) => p.uid === uid);
  if (known) {
    gid = known.gid;
    home = known.home;
  } else if (uid === 0) {
    home = "/root";
  }

  if (groupPart !== undefined && groupPart !== "") {
    if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
    else {
      const group = parseGroups(await readRootfsFile(rootfs, "/etc/group")).find((g) => g.name === groupPart);
      if (!group) throw new RunConfigError(`unable to find group ${groupPart}: no matching entries in the image's /etc/group`);
      gid = group.gid;
    }
  }
  for (const [what, id] of [["uid", uid], ["gid", gid]] as const) {
    if (id >= uidCount) throw new RunConfigError(`${what} ${id} is outside the ${uidCount} ids a container has`);
  }
  return { uid, gid, home };
}

/** The environment a container starts with. */
export function containerEnv(options: {
  image: ImageRunConfig;
  request?: string[];
  hostname: string;
  home: string;
  tty: boolean;
}): string[] {
  const defaults = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${options.hostname}`, `HOME=${options.home}`];
  if (options.tty) defaults.push("TERM=xterm");
  return mergeEnv(defaults, options.image.Env, options.request);
}
