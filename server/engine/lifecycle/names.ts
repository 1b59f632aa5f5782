// How containers are called. Like docker: a 12-hex-digit id (random, so two
// hosts or two runs never collide in practice) and a readable name such as
// "brave_turing" for people, who should not have to copy ids around.
import { randomBytes, randomInt } from "node:crypto";

export function newContainerId(): string {
  return randomBytes(6).toString("hex");
}

export const CONTAINER_ID = /^[0-9a-f]{12}$/;

/** What a user may call a container (docker's rule): starts with a letter or digit, then [a-zA-Z0-9_.-]. */
export const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

const adjectives = [
  "agile", "bold", "brave", "bright", "calm", "clever", "cosmic", "curious", "daring", "eager",
  "elegant", "fearless", "fluffy", "friendly", "gentle", "happy", "humble", "jolly", "keen", "kind",
  "lively", "lucid", "merry", "modest", "nimble", "noble", "patient", "plucky", "quiet", "quirky",
  "rapid", "serene", "sharp", "shiny", "silly", "sleepy", "snappy", "steady", "sunny", "swift",
  "tender", "tidy", "trusty", "upbeat", "vivid", "wise", "witty", "zealous",
];

// People (and one animal) of computing, as docker's generator does.
const nouns = [
  "babbage", "backus", "bell", "borg", "cerf", "dijkstra", "engelbart", "hamilton", "hopper", "kahn",
  "knuth", "lamport", "liskov", "lovelace", "mccarthy", "minsky", "moore", "noether", "pike", "ritchie",
  "shannon", "hoare", "stallman", "thompson", "torvalds", "turing", "wozniak", "allen", "goldberg", "kay",
  "lamarr", "perlman", "tanenbaum", "wirth", "yonath", "curie", "euler", "gauss", "hypatia", "napier",
  "pascal", "penguin", "ride", "sammet", "spence", "tesla", "wilkes", "zuse",
];

/**
 * A fresh adjective_noun name not in `taken`. After a few unlucky draws a
 * number is appended (docker does the same), so this always terminates.
 */
export function newContainerName(taken: ReadonlySet<string>): string {
  for (let attempt = 0; ; attempt++) {
    let name = `${adjectives[randomInt(adjectives.length)]}_${nouns[randomInt(nouns.length)]}`;
    if (attempt >= 10) name += String(randomInt(10 ** Math.min(attempt - 8, 6)));
    if (!taken.has(name)) return name;
  }
}
