// Image references, parsed the way Docker parses them.
//
// A reference names a repository in a registry and, optionally, a tag and/or
// a content digest:   [registry/]repository[:tag][@sha256:HEX]
//
//   alpine                           → docker.io / library/alpine : latest
//   user/repo:1.0                    → docker.io / user/repo : 1.0
//   127.0.0.1:5000/tools/busybox     → 127.0.0.1:5000 / tools/busybox : latest
//   alpine@sha256:…                  → docker.io / library/alpine @ sha256:…
//
// The first path component is a registry host only when it looks like one:
// it contains "." or ":", is "localhost", or has upper-case letters (which a
// repository name may not). Otherwise the image lives on Docker Hub, and a
// one-component Hub name is an "official image" under `library/`.
import { InvalidReferenceError } from "./errors.ts";
import type { ImageReference } from "./types.ts";
import { isDigest } from "./digest.ts";

export const DOCKER_HUB = "docker.io";
/** Names that Docker's tools also write for Docker Hub. */
const DOCKER_HUB_ALIASES = new Set(["index.docker.io", "registry-1.docker.io"]);
const OFFICIAL_PREFIX = "library/";
const DEFAULT_TAG = "latest";
/** Longest "registry/repository" Docker accepts. */
const MAX_NAME_LENGTH = 255;

// The grammar of github.com/distribution/reference, written out here.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`,
);
const TAG = /^[\w][\w.-]{0,127}$/;
/** Docker refuses a bare 64-hex name: it would be mistaken for an image id. */
const IMAGE_ID = /^[a-f0-9]{64}$/;

export function parseReference(text: string): ImageReference {
  const fail = (why: string): never => {
    throw new InvalidReferenceError(`invalid image reference "${printable(text)}": ${why}`);
  };
  if (text === "") fail("empty name");
  if (/[\s\x00-\x1f\x7f]/.test(text)) fail("contains whitespace or control characters");

  // name[:tag]@digest: the digest comes after the only "@".
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (digest.includes("@")) fail('more than one "@"');
    if (!digest.includes(":")) fail(`digest "${digest}" must look like sha256:<64 hex digits>`);
    if (!digest.startsWith("sha256:")) fail(`unsupported digest algorithm "${digest.split(":")[0]}" (only sha256)`);
    if (!isDigest(digest)) fail("a sha256 digest is 64 lower-case hex digits");
  }

  // A ":" after the last "/" starts the tag; one before it belongs to host:port.
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      fail(`invalid tag "${tag}" (letters, digits, "_", "." and "-", at most 128, not starting with "." or "-")`);
    }
  }

  if (rest === "") fail("empty repository name");
  if (IMAGE_ID.test(rest)) fail("a 64-hex-digit name is an image id, not a repository");

  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf("/");
  if (slash !== -1) {
    const first = rest.slice(0, slash);
    if (/[.:]/.test(first) || first === "localhost" || first !== first.toLowerCase()) {
      registry = first;
      repository = rest.slice(slash + 1);
    }
  }
  if (!DOMAIN.test(registry)) fail(`invalid registry host "${registry}"`);
  if (DOCKER_HUB_ALIASES.has(registry.toLowerCase())) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes("/")) repository = OFFICIAL_PREFIX + repository;

  if (repository === "") fail("empty repository name");
  for (const component of repository.split("/")) {
    if (PATH_COMPONENT.test(component)) continue;
    if (PATH_COMPONENT.test(component.toLowerCase())) fail(`repository name "${repository}" must be lower-case`);
    if (component === "") fail("empty path component (a doubled or trailing \"/\")");
    fail(
      `invalid repository name component "${component}" ` +
        '(lower-case letters and digits, separated by ".", "_", "__" or dashes)',
    );
  }
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) {
    fail(`name longer than ${MAX_NAME_LENGTH} characters`);
  }

  // Neither tag nor digest: Docker means the "latest" tag.
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return { registry, repository, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

/** The full, unambiguous form: "docker.io/library/alpine:latest". */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${suffix(ref)}`;
}

/** The short form Docker shows: "alpine:latest", "user/repo:1.0", "host:5000/repo:tag". */
export function familiarName(ref: ImageReference): string {
  let name = `${ref.registry}/${ref.repository}`;
  if (ref.registry === DOCKER_HUB) {
    name = ref.repository;
    const short = name.slice(OFFICIAL_PREFIX.length);
    if (name.startsWith(OFFICIAL_PREFIX) && !short.includes("/")) name = short;
  }
  return name + suffix(ref);
}

function suffix(ref: ImageReference): string {
  return (ref.tag !== undefined ? `:${ref.tag}` : "") + (ref.digest !== undefined ? `@${ref.digest}` : "");
}

/** Keep an error message on one line and of sane length whatever the user typed. */
function printable(text: string): string {
  const clean = text.replace(/[\x00-\x1f\x7f]/g, "?");
  return clean.length > 300 ? `${clean.slice(0, 300)}…` : clean;
}

/** Whether `text` is an image reference parseReference accepts (for validating settings and requests). */
export function isImageReference(text: string): boolean {
  try {
    parseReference(text);
    return true;
  } catch {
    return false;
  }
}
