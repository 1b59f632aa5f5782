// The decisions of layer application, as pure functions: what a tar entry's
// name means inside a layer, what a whiteout hides, who owns a file on the
// host. layer.ts does the file-system work; these rules are kept apart so they
// can be read, and tested, without root and without a disk.
//
// An image layer is a tar archive of the files the layer adds or changes. Two
// kinds of names are special (OCI image spec, "Representing Changes"):
//   dir/.wh.NAME        "whiteout": NAME existed in a lower layer and is deleted
//   dir/.wh..wh..opq    "opaque": everything lower layers had in dir is hidden
// The playground keeps each layer in a directory of its own and stacks them
// with overlayfs when a container starts, so these markers are stored the way
// overlayfs spells them: a whiteout is a character device 0/0 named NAME, and
// an opaque directory carries the xattr trusted.overlay.opaque=y.
import { ImageError } from "./errors.ts";

/** A layer that cannot be applied safely: hostile, malformed, or not a layer. */
export class LayerError extends ImageError {}

const WHITEOUT_PREFIX = ".wh.";
const OPAQUE_MARKER = ".wh..wh..opq";
/** aufs kept its own bookkeeping under `.wh..wh.` names (`.wh..wh.plnk`…); Docker skips them. */
const AUFS_META_PREFIX = ".wh..wh.";

/**
 * The path components of a tar entry name, relative to the layer root.
 *
 * Names are anchored at the layer root, as containerd does: in an image "/" is
 * the image's own root, so "/etc/passwd", "./etc/passwd" and "etc/passwd" are
 * the same file, and a leading "/" can never reach the host's root because we
 * never hand the name to the file system as it is. A ".." component is refused
 * outright rather than clamped: no image builder writes one, so it is an
 * attack or a broken archive, and silently putting the file elsewhere would
 * hide that. An empty list means the layer root itself.
 */
export function entryComponents(name: string): string[] {
  if (name.includes("\0")) throw new LayerError(`entry name ${quote(name)} contains a NUL byte`);
  const parts: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") throw new LayerError(`entry name ${quote(name)} has a ".." component`);
    parts.push(part);
  }
  return parts;
}

/** What one tar entry asks for, once its name has been read. */
export type EntryMeaning =
  | { kind: "plain"; path: string[] }
  /** Delete `path` as lower layers have it. */
  | { kind: "whiteout"; path: string[] }
  /** Hide what lower layers have inside the directory `dir`. */
  | { kind: "opaque"; dir: string[] }
  /** aufs bookkeeping: no meaning for us. */
  | { kind: "ignore"; path: string[] };

export function entryMeaning(name: string): EntryMeaning {
  const path = entryComponents(name);
  const base = path.at(-1);
  if (base === undefined || !base.startsWith(WHITEOUT_PREFIX)) return { kind: "plain", path };
  const dir = path.slice(0, -1);
  if (base === OPAQUE_MARKER) return { kind: "opaque", dir };
  if (base.startsWith(AUFS_META_PREFIX)) return { kind: "ignore", path };
  const target = base.slice(WHITEOUT_PREFIX.length);
  if (target === "" || target === "." || target === "..") {
    throw new LayerError(`whiteout ${quote(name)} names no file`);
  }
  return { kind: "whiteout", path: [...dir, target] };
}

/** What is already at an entry's path in this layer's directory. */
export type ExistingKind = "none" | "directory" | "whiteout" | "other";
/** What the entry wants to put there. */
export type NewKind = "directory" | "file" | "symlink" | "hardlink" | "whiteout";

/**
 * How to treat what is already at the path (an earlier entry of the same
 * layer wrote it). A directory over a directory merges, as tar does; anything
 * else replaces what was there. A whiteout never removes the same layer's
 * own file: the spec says a whiteout only hides lower layers' files, and this
 * layer's file already hides those.
 */
export function resolveExisting(existing: ExistingKind, wanted: NewKind): "create" | "merge" | "replace" | "keep" {
  if (existing === "none") return "create";
  if (wanted === "whiteout") return "keep";
  if (existing === "directory" && wanted === "directory") return "merge";
  return "replace";
}

/**
 * The host id that a container id is stored as. Layers are unpacked with
 * ownership shifted into the range the container's user namespace maps:
 * container root (0) is uidBase on the host, container uid N is uidBase+N.
 *
 * An id beyond the range (an image built on a host with uid 1000000, say) has
 * no host id the container could see. We store it as the container's
 * "nobody" (65534, or the top of a smaller range) rather than refuse the
 * image: that is what the kernel itself shows inside a user namespace for an
 * unmapped owner, so the container sees the same thing, and the file can
 * never belong to a host uid outside the container's range. The caller drops
 * setuid/setgid from such files, since they no longer run as the intended owner.
 */
export function shiftId(id: number, base: number, count: number): { hostId: number; clamped: boolean } {
  if (Number.isInteger(id) && id >= 0 && id < count) return { hostId: base + id, clamped: false };
  return { hostId: base + Math.min(65534, count - 1), clamped: true };
}

export function quote(name: string): string {
  const clean = name.replace(/[\x00-\x1f\x7f]/g, "?");
  return JSON.stringify(clean.length > 200 ? `${clean.slice(0, 200)}…` : clean);
}
