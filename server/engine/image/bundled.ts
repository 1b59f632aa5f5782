// The Alpine root file systems the repository carries (images/alpine/): the
// image a classroom gets when no registry can be reached, and the tests' own.
import path from "node:path";
import { repositoryRoot } from "../../repository.ts";

export const BUNDLED_ALPINE_VERSION = "3.20.3";

/** Alpine's architecture names, and the sha256 of each tarball as the repository carries it. */
const TARBALLS = {
  amd64: { arch: "x86_64", sha256: "d4e6fd67dcf75e40c451560ac7265166c2b72a0f38ddc9aae756a7de3d1efa0c" },
  arm64: { arch: "aarch64", sha256: "041fa34a81788242df9e78fa69b97ab45b8ec47ddbf88864755610414a7bf3de" },
} as const;

export type BundledArchitecture = keyof typeof TARBALLS;

export interface BundledTarball {
  file: string;
  /** The file as the repository names it ("images/alpine/…"), for messages and image records. */
  relative: string;
  /** Hex, as sha256sum prints it. */
  sha256: string;
}

/** The bundled minirootfs tarball for an OCI architecture ("amd64", "arm64"), with its expected digest. */
export function bundledAlpine(architecture: BundledArchitecture): BundledTarball {
  const { arch, sha256 } = TARBALLS[architecture];
  const relative = `images/alpine/alpine-minirootfs-${BUNDLED_ALPINE_VERSION}-${arch}.tar.gz`;
  return { file: path.join(repositoryRoot(import.meta.url, "images/alpine"), relative), relative, sha256 };
}

export function isBundledArchitecture(architecture: string): architecture is BundledArchitecture {
  return Object.hasOwn(TARBALLS, architecture);
}
