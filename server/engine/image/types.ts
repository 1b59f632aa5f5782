// Shapes shared by the registry client (network side) and the image store
// (disk side). Field names follow the OCI image spec.

/** A parsed image reference: `alpine` → docker.io / library/alpine / latest. */
export interface ImageReference {
  /** Registry host as written by the user, after defaults: "docker.io", "127.0.0.1:5000". */
  registry: string;
  /** Repository path: "library/alpine", "user/repo". */
  repository: string;
  tag?: string;
  /** "sha256:…" when pinned by digest. */
  digest?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** The parts of an image config a container runtime honours. */
export interface ImageRunConfig {
  Env?: string[];
  Cmd?: string[];
  Entrypoint?: string[];
  WorkingDir?: string;
  User?: string;
}

/** What the store keeps for each image (images/NAME.json). */
export interface ImageRecord {
  /** Canonical reference, e.g. "docker.io/library/alpine:latest". */
  name: string;
  /** Digest of the image manifest (the platform's, not the index's). */
  manifestDigest: string;
  /** Digest of the index the tag pointed to, when it pointed to one. */
  indexDigest?: string;
  configDigest: string;
  platform: Platform;
  /** Uncompressed layer digests (rootfs.diff_ids), bottom layer first. */
  diffIds: string[];
  /** Sum of the compressed layer sizes, as `docker images` shows. */
  size: number;
  config: ImageRunConfig;
  /** When it was pulled, loaded or imported. */
  pulledAt: string;
  /**
   * Where it came from, for people to read: "registry REF", "bundled FILE"
   * (the Alpine the repository carries), "load FILE" or "import FILE".
   * Absent in records written before it was kept.
   */
  source?: string;
}
