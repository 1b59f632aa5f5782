// A room's fixed topology: instead of adding instances freely ("+ instance"),
// every student gets the same set of named containers, each from its own
// image, on their private network (e.g. a client and a server). Declared in a
// small JSON file next to the lessons (lessons/topologies/NAME.json, or a
// course's own PLAYGROUND_LESSONS_DIR/topologies/NAME.json):
//
//   { "title": "A client and a server",
//     "instances": [ { "name": "client", "image": "alpine:latest" },
//                    { "name": "server", "image": "alpine:latest" } ] }
//
// The names become the containers' hostnames, and the names they reach each
// other by.
import fs from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { hostnameProblem } from "../common/validation.ts";
import { isImageReference } from "../engine/image/reference.ts";
import { LESSON_ID } from "./format.ts";

export interface Topology {
  id: string;
  title: string;
  instances: { name: string; image: string }[];
}

/** More than this is no classroom exercise, and would take one student a room's share of the host. */
export const MAX_TOPOLOGY_INSTANCES = 5;

const Schema = z
  .object({
    title: z.string().min(1).max(200),
    instances: z
      .array(
        z
          .object({
            name: z.string().refine((n) => !hostnameProblem(n) && !n.includes("."), "a host name: letters, digits and dashes"),
            image: z.string().refine(isImageReference, "an image reference such as alpine:latest"),
          })
          .strict(),
      )
      .min(1)
      .max(MAX_TOPOLOGY_INSTANCES),
  })
  .strict()
  .refine((t) => new Set(t.instances.map((i) => i.name)).size === t.instances.length, "instance names must differ");

/** The topology `id` from the first folder that has it; a clear error when none does or it is not valid. */
export async function loadTopology(dirs: string[], id: string): Promise<Topology> {
  if (!LESSON_ID.test(id)) throw new Error(`invalid topology name "${id}": lower-case letters, digits and dashes`);
  for (const dir of [...dirs].reverse()) {
    const file = path.join(dir, "topologies", `${id}.json`);
    let text: string;
    try {
      text = await fs.readFile(file, "utf8");
    } catch {
      continue;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new Error(`${file}: not JSON: ${(error as Error).message}`);
    }
    const parsed = Schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`${file}: ${issue.path.join(".") || "the file"}: ${issue.message}`);
    }
    return { id, ...parsed.data };
  }
  throw new Error(`no topology "${id}" (looked for topologies/${id}.json in ${dirs.join(", ")})`);
}
